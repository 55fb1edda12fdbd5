# A clock too far off for w32tm's default limits: let the Windows Time service correct any
# offset, then resynchronise (the limits can be put back afterwards).
$config = "HKLM\SYSTEM\CurrentControlSet\Services\W32Time\Config"
reg add $config /v MaxNegPhaseCorrection /t REG_DWORD /d 0xFFFFFFFF /f
reg add $config /v MaxPosPhaseCorrection /t REG_DWORD /d 0xFFFFFFFF /f
Start-Service -Name W32Time
w32tm /config /update
w32tm /resync /force
