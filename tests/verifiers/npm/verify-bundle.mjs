// Verify a Sigstore bundle with sigstore-js (@sigstore/verify), independently of the plugin.
//
// Usage: node verify-bundle.mjs BUNDLE PUBLIC_KEY_PEM EXPECTED_SUBJECT_DIGEST
//
// Key-based and offline, as `cosign verify --key` is: the trust material is the one public
// key given (whatever hint the bundle names), with no transparency log, certificate authority,
// CT log or timestamp authority, and thresholds of zero for each. The Verifier checks the
// bundle's form and the DSSE signature over the PAE; this script then checks that the hint is
// cosign's for that key and that the in-toto statement's subject has the expected digest
// (`sha256:<hex>`): the Verifier leaves a DSSE payload's meaning to its caller.
// Prints OK and exits 0, or FAIL and the reason and exits 1.
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { bundleFromJSON } from '@sigstore/bundle';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';

const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';

function verify(bundlePath, keyPath, subjectDigest) {
  const bundle = bundleFromJSON(JSON.parse(readFileSync(bundlePath, 'utf8')));
  const publicKey = createPublicKey(readFileSync(keyPath));
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const hint = createHash('sha256').update(der).digest('base64');

  const noServices = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [],
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [],
  };
  const trusted = () => ({ publicKey, validFor: () => true });
  const verifier = new Verifier(toTrustMaterial(noServices, trusted), {
    tlogThreshold: 0,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
  verifier.verify(toSignedEntity(bundle));

  const material = bundle.verificationMaterial.content;
  if (material.$case !== 'publicKey' || material.publicKey.hint !== hint) {
    throw new Error("the bundle's public key hint is not this key's");
  }
  if (bundle.content.$case !== 'dsseEnvelope') {
    throw new Error(`content is ${bundle.content.$case}, not a DSSE envelope`);
  }
  const envelope = bundle.content.dsseEnvelope;
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    throw new Error(`payloadType ${envelope.payloadType}`);
  }
  const statement = JSON.parse(envelope.payload.toString('utf8'));
  if (statement._type !== STATEMENT_TYPE) {
    throw new Error(`statement _type ${statement._type}`);
  }
  const [algorithm, digest] = subjectDigest.split(':');
  if (!statement.subject.some((s) => (s.digest || {})[algorithm] === digest)) {
    throw new Error(`subject: no subject has digest ${subjectDigest}`);
  }
}

const args = process.argv.slice(2);
if (args.length !== 3) {
  console.error('usage: node verify-bundle.mjs BUNDLE PUBLIC_KEY_PEM EXPECTED_SUBJECT_DIGEST');
  process.exit(2);
}
try {
  verify(...args);
  console.log('OK');
} catch (error) {
  console.log(`FAIL ${error.name}: ${error.code ? `${error.code}: ` : ''}${error.message}`);
  process.exit(1);
}
