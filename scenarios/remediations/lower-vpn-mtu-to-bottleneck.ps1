# The VPN adapter's MTU at or below the path's bottleneck. 1280 is the smallest MTU an IPv6 link
# may have (RFC 8200 section 5), below every VPN encapsulation's overhead on a 1500-byte path.
netsh interface ipv4 set subinterface "VPN" mtu=1280 store=persistent
