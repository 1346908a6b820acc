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

{{/*
Bytes in a Kubernetes memory quantity: digits with an optional binary (Ki,
Mi, Gi, Ti) or decimal (k, M, G, T) suffix.
*/}}
{{- define "flexgate.memoryBytes" -}}
{{- $q := . -}}
{{- if kindIs "float64" $q }}{{ $q = int64 $q }}{{ end -}}
{{- $q = toString $q -}}
{{- if not (regexMatch "^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$" $q) -}}
{{- fail (printf "deployment.resources.limits.memory %q: the chart derives the connection cap and GOMEMLIMIT from it and reads whole numbers with an optional unit (Ki, Mi, Gi, Ti, k, M, G, T); write it as, e.g., 512Mi." $q) -}}
{{- end -}}
{{- $units := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 -}}
{{- $n := regexReplaceAll "^([0-9]+).*$" $q "${1}" | atoi -}}
{{- $u := regexReplaceAll "^[0-9]+" $q "" -}}
{{- mul $n (get $units $u) -}}
{{- end -}}

{{/*
The memory limit of the gateway container in bytes, or "" without one.
*/}}
{{- define "flexgate.memoryLimitBytes" -}}
{{- $mem := dig "resources" "limits" "memory" "" .Values.deployment -}}
{{- if $mem }}{{ include "flexgate.memoryBytes" $mem }}{{ end -}}
{{- end -}}

{{/*
GOMEMLIMIT: 90 % of the memory limit, so that the Go runtime collects harder
as it nears the limit instead of being OOM-killed. "" without a memory limit,
or when deployment.extraEnvs sets GOMEMLIMIT itself.
*/}}
{{- define "flexgate.goMemLimit" -}}
{{- $own := false -}}
{{- range .Values.deployment.extraEnvs }}{{ if eq (toString .name) "GOMEMLIMIT" }}{{ $own = true }}{{ end }}{{ end -}}
{{- $limit := include "flexgate.memoryLimitBytes" . -}}
{{- if and $limit (not $own) }}{{ div (mul (atoi $limit) 9) 10 }}{{ end -}}
{{- end -}}

{{/*
--max-connections: gateway.maxConnections, or when null what fits the memory
limit: (90 % of the limit − memoryReserveMiB) ÷ memoryPerConnectionKiB. An
explicit value that does not fit fails. "" when there is neither a value nor
a memory limit: the config's limits.maxConnections decides.
*/}}
{{- define "flexgate.maxConnections" -}}
{{- $g := .Values.gateway -}}
{{- $set := $g.maxConnections -}}
{{- $limit := include "flexgate.memoryLimitBytes" . -}}
{{- if not $limit -}}
{{- if not (kindIs "invalid" $set) }}{{ int64 $set }}{{ end -}}
{{- else -}}
{{- $budget := div (mul (atoi $limit) 9) 10 -}}
{{- $reserve := mul (int64 $g.memoryReserveMiB) 1048576 -}}
{{- $per := mul (int64 $g.memoryPerConnectionKiB) 1024 -}}
{{- $mem := .Values.deployment.resources.limits.memory -}}
{{- if le $budget $reserve -}}
{{- fail (printf "deployment.resources.limits.memory %v leaves no room for connections: 90%% of it is %d MiB, and gateway.memoryReserveMiB keeps %d MiB aside. Raise the memory limit." $mem (div $budget 1048576) (int64 $g.memoryReserveMiB)) -}}
{{- end -}}
{{- $fit := div (sub $budget $reserve) $per -}}
{{- if kindIs "invalid" $set -}}
{{- $fit -}}
{{- else if gt (int64 $set) $fit -}}
{{- $need := div (add (div (mul (add (mul (int64 $set) $per) $reserve) 10) 9) 1048575) 1048576 -}}
{{- fail (printf "gateway.maxConnections is %d, but a %v memory limit holds %d connections: (90%% of the limit − %d MiB reserve) ÷ %d KiB each. Lower it to %d, or raise deployment.resources.limits.memory to %dMi." (int64 $set) $mem $fit (int64 $g.memoryReserveMiB) (int64 $g.memoryPerConnectionKiB) $fit $need) -}}
{{- else -}}
{{- int64 $set -}}
{{- end -}}
{{- end -}}
{{- end -}}
