Write-Output "Hello World!"
