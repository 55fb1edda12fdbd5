# Group Policy: Computer Configuration > Administrative Templates > Windows Components > Remote
# Desktop Services > Remote Desktop Session Host > Security > "Require use of specific security
# layer for remote (RDP) connections" = RDP (Standard RDP Security), as the registry value the policy writes.
reg add "HKLM\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services" /v SecurityLayer /t REG_DWORD /d 0 /f
