param([string]$GatewayName = "rdgw.lab.test")
Import-Module RemoteDesktopServices
# A certificate from the enterprise CA the clients trust, Web Server template, for the gateway's name.
$enrollment = Get-Certificate -Template WebServer -DnsName $GatewayName -CertStoreLocation "Cert:\LocalMachine\My"
Set-Item -Path "RDS:\GatewayServer\SSLCertificate\Thumbprint" -Value $enrollment.Certificate.Thumbprint
Restart-Service -Name TSGateway -Force
