{{/*
Objects are named after the release so that `helm install flex-gateway`
makes deployment/flex-gateway, the name runbooks use with kubectl.
*/}}
{{- define "flexgate.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "flexgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "flexgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flexgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "flexgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "flexgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "flexgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flexgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Autoscaling settings: the top-level block (Helm's usual place) overlaid key by
key with deployment.autoscaling (where the seed values file puts it). A plain
merge would let a top-level `enabled: true` beat `deployment.autoscaling.enabled:
false`, because merge treats false as unset.
*/}}
{{- define "flexgate.autoscaling" -}}
{{- $as := deepCopy (default dict .Values.autoscaling) -}}
{{- range $k, $v := (default dict .Values.deployment.autoscaling) -}}
{{- $_ := set $as $k $v -}}
{{- end -}}
{{- toYaml $as -}}
{{- end -}}

{{/* The ConfigMap mounted at gateway.configDir, or "" when there is none. */}}
{{- define "flexgate.configMapName" -}}
{{- if .Values.deployment.configMapName -}}
{{- .Values.deployment.configMapName -}}
{{- else if .Values.config -}}
{{- printf "%s-config" (include "flexgate.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "flexgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
Grace period: the preStop sleep, the gateway's drain delay and its shutdown
timeout all run inside it; five more seconds cover process exit.
*/}}
{{- define "flexgate.terminationGracePeriodSeconds" -}}
{{- $g := .Values.gateway -}}
{{- $need := add (int $g.preStopSleepSeconds) (int $g.drainDelaySeconds) (int $g.shutdownTimeoutSeconds) -}}
{{- $set := .Values.deployment.terminationGracePeriodSeconds -}}
{{- if kindIs "invalid" $set -}}
{{- add $need 5 -}}
{{- else if lt (int $set) (int $need) -}}
{{- fail (printf "deployment.terminationGracePeriodSeconds is %d, below gateway.preStopSleepSeconds + drainDelaySeconds + shutdownTimeoutSeconds = %d: Kubernetes would kill pods mid-request. Raise it to at least %d, or lower the gateway timings." (int $set) (int $need) (int $need)) -}}
{{- else -}}
{{- int $set -}}
{{- end -}}
{{- end -}}
