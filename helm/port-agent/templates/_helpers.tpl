{{/*
The chart's name, or nameOverride. Kubernetes names and label values stop at 63 characters.
*/}}
{{- define "port-agent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name, used for every object: fullnameOverride, else "<release>-<name>", or
the release name alone when it already contains the chart's name (as the official chart does, so
an upgrade from it keeps the same object names).
*/}}
{{- define "port-agent.fullname" -}}
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

{{/*
"<chart>-<version>" for the helm.sh/chart label.
*/}}
{{- define "port-agent.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels. The same two labels as the official chart: a Deployment's selector cannot
change, and keeping it lets `helm upgrade` move a release from the official chart to this one.
*/}}
{{- define "port-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "port-agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of every object (and of the pods): the selector labels, the chart's, and extraLabels.
*/}}
{{- define "port-agent.labels" -}}
helm.sh/chart: {{ include "port-agent.chart" . }}
{{ include "port-agent.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- range $key, $value := .Values.extraLabels }}
{{ $key }}: {{ include "port-agent.string" $value | quote }}
{{- end }}
{{- end }}

{{/*
A value as the text an environment variable, label or annotation holds. YAML numbers arrive as
float64, which Go prints as 1e+06 from a million on; whole numbers are printed as integers
instead. null is the empty string.
*/}}
{{- define "port-agent.string" -}}
{{- if kindIs "invalid" . }}
{{- else if and (kindIs "float64" .) (eq . (floor .)) }}
{{- . | int64 | toString }}
{{- else }}
{{- . | toString }}
{{- end }}
{{- end }}

{{/*
An IntOrString value: a number as an integer, a string (a percentage) quoted.
*/}}
{{- define "port-agent.intOrPercent" -}}
{{- if kindIs "string" . }}{{ . | quote }}{{ else }}{{ include "port-agent.string" . }}{{ end }}
{{- end }}

{{/*
A map of annotations, each value as a string (Kubernetes rejects numbers and booleans there).
*/}}
{{- define "port-agent.annotations" -}}
{{- $annotations := dict }}
{{- range $key, $value := . }}
{{- $_ := set $annotations $key (include "port-agent.string" $value) }}
{{- end }}
{{- toYaml $annotations }}
{{- end }}

{{/*
The name of the Secret with PORT_CLIENT_ID and PORT_CLIENT_SECRET: secret.name, else the full
name. The chart creates it unless secret.useExistingSecret.
*/}}
{{- define "port-agent.secretName" -}}
{{- default (include "port-agent.fullname" .) .Values.secret.name }}
{{- end }}

{{/*
The name of the Secret with the self-signed certificate: the existing one, or the chart's
"<fullname>-cert" (the official chart's name).
*/}}
{{- define "port-agent.selfSignedCertName" -}}
{{- $cert := .Values.selfSignedCertificate }}
{{- if $cert.secret.useExistingSecret }}
{{- required "selfSignedCertificate.secret.name is required with selfSignedCertificate.secret.useExistingSecret=true: the name of the Secret holding the PEM certificate" $cert.secret.name }}
{{- else }}
{{- printf "%s-cert" (include "port-agent.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
The key of the certificate inside its Secret (crt by default): the one key the volume projects,
mounted by subPath as /usr/local/share/ca-certificates/cert.crt whatever its name.
*/}}
{{- define "port-agent.selfSignedCertKey" -}}
{{- default "crt" .Values.selfSignedCertificate.secret.key }}
{{- end }}

{{/*
The ConfigMap holding controlThePayloadConfig.
*/}}
{{- define "port-agent.mappingConfigMapName" -}}
{{- printf "%s-mapping" (include "port-agent.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Whether the metrics Service exists: metrics.enabled, or a ServiceMonitor that needs it.
Renders "true" or nothing.
*/}}
{{- define "port-agent.metricsServiceEnabled" -}}
{{- if or .Values.metrics.enabled .Values.metrics.serviceMonitor.enabled }}true{{ end }}
{{- end }}

{{/*
Checks of values that would otherwise give a pod that cannot start or cannot stop cleanly. Each
fails the install with a message saying what to change.
*/}}
{{- define "port-agent.validate" -}}
{{- $normal := .Values.env.normal | default dict }}
{{- if hasKey $normal "HEALTH_PORT" }}
{{- if ne (include "port-agent.string" (get $normal "HEALTH_PORT")) (include "port-agent.string" .Values.health.port) }}
{{- fail (printf "env.normal.HEALTH_PORT (%s) differs from health.port (%s): set health.port only; the chart sets HEALTH_PORT, the container port and the probes from it" (include "port-agent.string" (get $normal "HEALTH_PORT")) (include "port-agent.string" .Values.health.port)) }}
{{- end }}
{{- end }}
{{- if .Values.selfSignedCertificate.enabled }}
{{- if not .Values.selfSignedCertificate.secret.useExistingSecret }}
{{- if not (contains "-----BEGIN CERTIFICATE-----" (.Values.selfSignedCertificate.certificate | default "")) }}
{{- fail "selfSignedCertificate.certificate must be a PEM certificate (-----BEGIN CERTIFICATE-----): set it with --set-file selfSignedCertificate.certificate=ca.crt, or point selfSignedCertificate.secret at an existing Secret with useExistingSecret=true" }}
{{- end }}
{{- end }}
{{- end }}
{{- if hasKey $normal "AGENT_SHUTDOWN_GRACE_SECONDS" }}
{{- $grace := get $normal "AGENT_SHUTDOWN_GRACE_SECONDS" | toString | float64 }}
{{- if ge $grace (float64 .Values.terminationGracePeriodSeconds) }}
{{- fail (printf "terminationGracePeriodSeconds (%s) must be greater than env.normal.AGENT_SHUTDOWN_GRACE_SECONDS (%s), or Kubernetes kills the agent before its in-flight runs finish and are committed" (include "port-agent.string" .Values.terminationGracePeriodSeconds) (include "port-agent.string" (get $normal "AGENT_SHUTDOWN_GRACE_SECONDS"))) }}
{{- end }}
{{- end }}
{{- if .Values.controlThePayloadConfig }}
{{- $mappings := fromJsonArray .Values.controlThePayloadConfig }}
{{- range $mappings }}
{{- if not (kindIs "map" .) }}
{{- fail (printf "controlThePayloadConfig must be a JSON list of mapping objects (%s)" (toString .)) }}
{{- end }}
{{- end }}
{{- end }}
{{- if .Values.podDisruptionBudget.enabled }}
{{- $pdb := .Values.podDisruptionBudget }}
{{- if and (not (kindIs "invalid" $pdb.minAvailable)) (not (kindIs "invalid" $pdb.maxUnavailable)) }}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable, not both (set the other to null)" }}
{{- end }}
{{- if and (kindIs "invalid" $pdb.minAvailable) (kindIs "invalid" $pdb.maxUnavailable) }}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The container's environment. Chart-set variables first; then env.secret from the chart's Secret,
one secretKeyRef each (the official chart's shape); then env.normal; then extraEnv. With
secret.useExistingSecret the Secret is loaded whole with envFrom instead (see the Deployment).
*/}}
{{- define "port-agent.env" -}}
- name: HEALTH_PORT
  value: {{ include "port-agent.string" .Values.health.port | quote }}
{{- if not .Values.secret.useExistingSecret }}
{{- range $key, $_ := .Values.env.secret }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ include "port-agent.secretName" $ }}
      key: {{ $key }}
{{- end }}
{{- end }}
{{- range $key, $value := .Values.env.normal }}
{{- if ne $key "HEALTH_PORT" }}
- name: {{ $key }}
  value: {{ include "port-agent.string" $value | quote }}
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
