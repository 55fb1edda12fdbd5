# TLS 1.2 in Schannel (server and client side); Schannel reads these values at boot, and the
# restart the updates below end with applies them.
$tls12 = "HKLM:\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2"
New-Item -Path "$tls12\Server" -Force | Out-Null
New-ItemProperty -Path "$tls12\Server" -Name Enabled -Value 1 -PropertyType DWord -Force | Out-Null
New-ItemProperty -Path "$tls12\Server" -Name DisabledByDefault -Value 0 -PropertyType DWord -Force | Out-Null
New-Item -Path "$tls12\Client" -Force | Out-Null
New-ItemProperty -Path "$tls12\Client" -Name Enabled -Value 1 -PropertyType DWord -Force | Out-Null
New-ItemProperty -Path "$tls12\Client" -Name DisabledByDefault -Value 0 -PropertyType DWord -Force | Out-Null
# then the updates (KB3080079: TLS 1.1/1.2 for RDP; the CredSSP update), one restart for both
Install-Module -Name PSWindowsUpdate -Force
Install-WindowsUpdate -MicrosoftUpdate -AcceptAll -AutoReboot
