param([string]$HostAddress = "192.0.2.10")
# Connect to the server's IP address instead of its name: mstsc opens with the most recent
# entry (MRU0) in the Computer box.
Set-ItemProperty -Path "HKCU:\Software\Microsoft\Terminal Server Client\Default" -Name MRU0 -Value $HostAddress
