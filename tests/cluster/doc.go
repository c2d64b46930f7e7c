// Package cluster tests the shipped deployment (deployments/) with real
// processes: three nats-server processes started from deployments/nats
// (built from the nats-server module go.mod pins; ports, stores and NKeys
// substituted), the edge and pushctl binaries, and each role's client
// library connected as that role's user. Its tests check the permissions
// of every role: what each must be refused, and that everything each does
// works under them.
package cluster
