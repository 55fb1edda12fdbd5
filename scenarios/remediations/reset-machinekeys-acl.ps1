# Reset the permissions of the machine key store, give TermService's account (NETWORK SERVICE)
# read access to the RDP listener's key (container TSSecKeySet1, file f686aace...), restart.
$machineKeys = "$env:ProgramData\Microsoft\Crypto\RSA\MachineKeys"
icacls $machineKeys /reset /T /C /Q
icacls "$machineKeys\f686aace6942fb7f7ceb231212eef4a4_*" /grant "NT AUTHORITY\NETWORK SERVICE:(R)" /C
Restart-Service -Name TermService -Force
