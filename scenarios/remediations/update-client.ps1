# Install pending Windows updates (PSWindowsUpdate module from the PowerShell Gallery) and
# restart when they need it.
Install-Module -Name PSWindowsUpdate -Force
Install-WindowsUpdate -MicrosoftUpdate -AcceptAll -AutoReboot
