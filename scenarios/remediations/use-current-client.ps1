param([string]$HostName = "rdhost.lab.test")
# The built-in, up-to-date Remote Desktop Connection of this Windows 11 client (NLA, CredSSP v6).
mstsc /v:$HostName
