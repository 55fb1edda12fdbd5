# Move the machine key store aside and restart: Windows rebuilds MachineKeys at boot and
# Remote Desktop creates a new certificate and key in it.
Rename-Item -Path "C:\ProgramData\Microsoft\Crypto\RSA\MachineKeys" -NewName "MachineKeys_old"
Restart-Computer -Force
