param([string]$GatewayName = "rdgw.lab.test")
# Replace the RD Gateway's SSL certificate with a new self-signed one for the gateway's name, bind
# it to RD Gateway and restart the service (the web's advice for an expired gateway certificate).
Import-Module RemoteDesktopServices
$cert = New-SelfSignedCertificate -DnsName $GatewayName -CertStoreLocation "Cert:\LocalMachine\My"
Set-Item -Path "RDS:\GatewayServer\SSLCertificate\Thumbprint" -Value $cert.Thumbprint
Restart-Service -Name TSGateway -Force
