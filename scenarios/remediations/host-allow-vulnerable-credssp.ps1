# CredSSP "Encryption Oracle Remediation" = Vulnerable on the server. The policy key does not
# exist until something creates it.
$key = "HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System\CredSSP\Parameters"
New-Item -Path $key -Force | Out-Null
New-ItemProperty -Path $key -Name AllowEncryptionOracle -PropertyType DWord -Value 2 -Force | Out-Null
