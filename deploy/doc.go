// Package deploy holds no gateway code: it is the Go module that tests the
// Kubernetes deployment of flexgate (the Helm chart under helm/flexgate, the
// container image's Dockerfile, the GitOps workflow and the Grafana
// dashboard) with Helm, the Kubernetes API types and actionlint as
// libraries, so that the gateway's own module does not carry them.
package deploy
