# Turn off "Allow connections only from computers running Remote Desktop with Network Level
# Authentication" on the RDP-Tcp listener.
Set-ItemProperty -Path "HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp" -Name UserAuthentication -Value 0
