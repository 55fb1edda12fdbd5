# CredSSP "Encryption Oracle Remediation" = Vulnerable on this client (the registry equivalent
# of the Group Policy setting), so it talks to unpatched servers again.
reg add "HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System\CredSSP\Parameters" /v AllowEncryptionOracle /t REG_DWORD /d 2 /f
