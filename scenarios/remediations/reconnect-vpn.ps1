rasdial "Lab VPN" /disconnect
rasdial "Lab VPN"
