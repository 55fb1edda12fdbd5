param([string]$HostName = "rdhost.lab.test", [string]$UserGroup = "Domain Users@LAB")
# Let the users reach the session host by the name they use: an RD Gateway-managed computer group
# with the host's FQDN, and an RD RAP granting the users' group access to it (TCP 3389).
Import-Module RemoteDesktopServices
New-Item -Path "RDS:\GatewayServer\GatewayManagedComputerGroups" -Name "RDLab-SessionHosts" -Description "Session hosts reached through RD Gateway" -Computers $HostName
New-Item -Path "RDS:\GatewayServer\RAP" -Name "RDLab-SessionHosts-RAP" -UserGroups $UserGroup -ComputerGroupType 0 -ComputerGroup "RDLab-SessionHosts"
