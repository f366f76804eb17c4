"""The multi-host lab in Linux network namespaces (root only): see docs/netlab.md.

`topology` builds the hosts, bridges and veth pairs; `supervisor` runs the project's
processes inside them; `shaper` is a userspace netem for kernels without one; `lab`
(`NetLab`) puts them together and tears everything down; `cli` is `b2bua netlab`.
"""
