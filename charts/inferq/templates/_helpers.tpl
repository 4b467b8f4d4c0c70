{{/* Names and labels. */}}
{{- define "inferq.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "inferq.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "inferq.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "inferq.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: inferq
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "component" "producer"). */}}
{{- define "inferq.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inferq.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "inferq.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "inferq.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* image: (dict "root" $ "name" "worker"). */}}
{{- define "inferq.image" -}}
{{- printf "%s/%s:%s" .root.Values.image.registry .name (default .root.Chart.AppVersion .root.Values.image.tag) }}
{{- end }}

{{/* A value rendered as a template: (dict "root" $ "value" .Values.nats.url). */}}
{{- define "inferq.tpl" -}}
{{- tpl (toString .value) .root }}
{{- end }}

{{- define "inferq.s3SecretName" -}}
{{- if .Values.s3.existingSecret }}
{{- tpl .Values.s3.existingSecret . }}
{{- else }}
{{- printf "%s-s3" (include "inferq.fullname" .) }}
{{- end }}
{{- end }}

{{- define "inferq.tenantsSecretName" -}}
{{- if .Values.tenants.existingSecret }}
{{- tpl .Values.tenants.existingSecret . }}
{{- else }}
{{- printf "%s-tenants" (include "inferq.fullname" .) }}
{{- end }}
{{- end }}

{{/* The models a worker pool serves: (dict "root" $ "pool" $pool). */}}
{{- define "inferq.poolModels" -}}
{{- if .pool.models }}{{ join "," .pool.models }}{{ else }}{{ join "," .root.Values.models }}{{ end }}
{{- end }}

{{/*
The environment every inferq container gets: the shared ConfigMap, the
credentials from Secrets, then the process's own INFERQ_* settings.
(dict "root" $ "env" $componentEnv)
*/}}
{{- define "inferq.env" -}}
{{- $root := .root -}}
- name: INFERQ_S3_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ include "inferq.s3SecretName" $root }}, key: access-key}
- name: INFERQ_S3_SECRET_KEY
  valueFrom:
    secretKeyRef: {name: {{ include "inferq.s3SecretName" $root }}, key: secret-key}
{{- if $root.Values.nats.existingSecret }}
- name: INFERQ_NATS_URL
  valueFrom:
    secretKeyRef: {name: {{ tpl $root.Values.nats.existingSecret $root }}, key: {{ $root.Values.nats.existingSecretKey }}}
{{- end }}
{{- if $root.Values.redis.existingSecret }}
- name: INFERQ_REDIS_URL
  valueFrom:
    secretKeyRef: {name: {{ tpl $root.Values.redis.existingSecret $root }}, key: {{ $root.Values.redis.existingSecretKey }}}
{{- end }}
{{- range $k, $v := .env }}
- name: {{ $k }}
  value: {{ toString $v | quote }}
{{- end }}
{{- end }}

{{/* Probes on the ops port: /healthz for liveness, /readyz (NATS, Redis
and S3 reachable) for readiness; startup allows for connecting and, in a
worker, loading the models. (dict "startupSeconds" 120) */}}
{{- define "inferq.probes" -}}
startupProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 5
  failureThreshold: {{ div (default 120 .startupSeconds) 5 }}
livenessProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: http}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end }}

{{/* Volumes every inferq pod mounts: /tmp (the root file system is
read-only) and, where the process reads it, the tenants file. */}}
{{- define "inferq.volumes" -}}
- name: tmp
  emptyDir: {}
{{- if .tenants }}
- name: tenants
  secret:
    secretName: {{ include "inferq.tenantsSecretName" .root }}
{{- end }}
{{- end }}

{{- define "inferq.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .tenants }}
- name: tenants
  mountPath: /etc/inferq/tenants
  readOnly: true
{{- end }}
{{- end }}

{{/* Checksums that roll the pods when their configuration changes. */}}
{{- define "inferq.configChecksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secrets: {{ include (print .Template.BasePath "/secrets.yaml") . | sha256sum }}
{{- end }}

{{/*
The enabled worker pools, each merged over workerDefaults, as YAML:
{{ $pools := include "inferq.pools" . | fromYaml }}
*/}}
{{- define "inferq.pools" -}}
{{- $out := dict }}
{{- range $name, $pool := .Values.workers }}
{{- if and $pool (ne (toString $pool.enabled) "false") }}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $name) }}
{{- fail (printf "workers.%s: a pool name must be a DNS label (lower-case letters, digits, -)" $name) }}
{{- end }}
{{- $merged := mergeOverwrite (deepCopy $.Values.workerDefaults) (deepCopy $pool) }}
{{- $_ := set $merged "name" $name }}
{{- if not $merged.models }}
{{- $_ := set $merged "models" $.Values.models }}
{{- end }}
{{- $_ := set $out $name $merged }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}
