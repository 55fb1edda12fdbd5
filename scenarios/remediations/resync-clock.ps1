# Start the Windows Time service (trigger-start on workgroup machines) and resynchronise now.
Start-Service -Name W32Time
w32tm /resync /force
