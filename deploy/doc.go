// Package deploy holds what runs inferq outside a developer's machine, and
// the tests that keep it in step with the code: the Helm chart
// (charts/inferq, charts/inferq-trial), docker-compose.yml and the
// Dockerfile at the repository root, the Grafana dashboard
// (deploy/grafana), the Prometheus alert rules (deploy/prometheus) and the
// images' health probe (deploy/healthcheck). The tests render the chart
// with helm, parse the compose file and the Dockerfile, and compare the
// names they use (INFERQ_* variables, JetStream streams and consumers,
// metrics) with the ones the code defines, so that a rename breaks a test
// rather than a deployment.
package deploy
