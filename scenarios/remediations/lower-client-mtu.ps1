# Lower the MTU of the VPN interface so packets fit the tunnel.
netsh interface ipv4 set subinterface "VPN" mtu=1400 store=persistent
