function Write-NodeLog([string]$Message) {
    Write-Output ("{0:o} {1}" -f (Get-Date), $Message)
}
