// Package check holds the tests of what deployments/ ships that cannot
// run here, with no container runtime or registry: the Dockerfile, the
// compose cluster, the Kubernetes base (rendered with kustomize as a
// library) and the NATS Helm chart's values. Each is parsed or rendered
// and held against the edge binary built from this repository: its flags,
// defaults, ports and stop timing, so that a flag renamed or a port moved
// fails here rather than in someone's cluster.
//
// It is a module of its own, so that the main module does not take
// kustomize's dependencies; make test runs it (make deployments).
package check
