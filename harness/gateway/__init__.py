"""RD Gateway (MS-TSGU HTTP transport): a gateway server relaying to a host, and the client tunnel.

`server.GatewayServer` answers RDG_OUT_DATA / RDG_IN_DATA (or the WebSocket upgrade) with NTLM
over HTTP, then tunnel, tunnel-authorization and channel creation as its `GatewayPolicy` says;
`client.open_tunnel` is the probe's side and returns a socket-like tunnel to the target.
"""
