# Raise the listener's limit of outstanding (not yet logged-on) connections; TermService reads
# it when it starts.
reg add "HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server" /v MaxOutstandingConnections /t REG_DWORD /d 65536 /f
Restart-Service -Name TermService -Force
