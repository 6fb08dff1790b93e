. "$env:CONTAINER_SANDBOX_MOUNT_POINT\tools\NodeLog.ps1"
Write-NodeLog "node agent starting with $env:AGENT_CONFIG"
