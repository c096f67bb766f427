// Package deploy holds no code: its tests check the deploy files (the
// Dockerfile, deploy/compose, deploy/kubernetes and deploy/prometheus)
// without a container engine, a cluster or a Prometheus server.
package deploy
