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

{{/*
FLEXGATE_MAX_REPLICAS: the most pods that serve at once, which a
clusterizable rate limit with onStoreError: local divides its limit by. The
HPA's maxReplicas (replicaCount without one) plus the rolling update's
maxSurge (a percentage rounds up, as the Deployment controller rounds it).
*/}}
{{- define "flexgate.maxReplicas" -}}
{{- $as := include "flexgate.autoscaling" . | fromYaml -}}
{{- $n := int .Values.deployment.replicaCount -}}
{{- if $as.enabled }}{{ $n = int $as.maxReplicas }}{{ end -}}
{{- $surge := 0 -}}
{{- $st := default dict .Values.deployment.strategy -}}
{{- if eq (toString (default "RollingUpdate" $st.type)) "RollingUpdate" -}}
{{- $ms := dig "rollingUpdate" "maxSurge" "25%" $st -}}
{{- if and (kindIs "string" $ms) (hasSuffix "%" $ms) -}}
{{- $surge = div (add (mul $n (trimSuffix "%" $ms | atoi)) 99) 100 -}}
{{- else -}}
{{- $surge = int $ms -}}
{{- end -}}
{{- end -}}
{{- add $n $surge -}}
{{- end -}}

{{/*
"true" when sharedStorage names a Redis; fails when it names more than one.
*/}}
{{- define "flexgate.sharedStorage" -}}
{{- $r := .Values.sharedStorage.redis -}}
{{- $modes := 0 -}}
{{- if $r.address }}{{ $modes = add1 $modes }}{{ end -}}
{{- if $r.sentinel.addresses }}{{ $modes = add1 $modes }}{{ end -}}
{{- if $r.cluster.addresses }}{{ $modes = add1 $modes }}{{ end -}}
{{- if gt (int $modes) 1 -}}
{{- fail "sharedStorage.redis: set one of address (one server), sentinel.addresses (a Sentinel set) and cluster.addresses (a Redis Cluster), not several." -}}
{{- end -}}
{{- if gt (int $modes) 0 }}true{{ end -}}
{{- end -}}

{{/*
The Gateway document that gives the gateway its shared storage. Secrets
reach it as environment variables (see flexgate.sharedStorageEnv), named
with $env so that neither the ConfigMap nor /config holds them.
*/}}
{{- define "flexgate.sharedStorageDocument" -}}
{{- $r := .Values.sharedStorage.redis -}}
{{- $redis := dict -}}
{{- with $r.address }}{{ $_ := set $redis "address" . }}{{ end -}}
{{- if $r.sentinel.addresses -}}
{{- $s := dict "addresses" $r.sentinel.addresses "masterName" $r.sentinel.masterName -}}
{{- if $r.sentinel.passwordSecret.name }}{{ $_ := set $s "password" "$env.FLEXGATE_REDIS_SENTINEL_PASSWORD" }}{{ end -}}
{{- $_ := set $redis "sentinel" $s -}}
{{- end -}}
{{- with $r.cluster.addresses }}{{ $_ := set $redis "cluster" (dict "addresses" .) }}{{ end -}}
{{- with $r.username }}{{ $_ := set $redis "username" . }}{{ end -}}
{{- if $r.db }}{{ $_ := set $redis "db" (int $r.db) }}{{ end -}}
{{- if $r.passwordSecret.name }}{{ $_ := set $redis "password" "$env.FLEXGATE_REDIS_PASSWORD" }}{{ end -}}
{{- if $r.tls.enabled -}}
{{- $t := dict "minVersion" (toString $r.tls.minVersion) -}}
{{- if $r.tls.caSecret.name }}{{ $_ := set $t "trustedCA" "$env.FLEXGATE_REDIS_CA" }}{{ end -}}
{{- if $r.tls.clientCertSecret }}{{ $_ := set $t "certificate" (dict "crt" "$env.FLEXGATE_REDIS_TLS_CRT" "key" "$env.FLEXGATE_REDIS_TLS_KEY") }}{{ end -}}
{{- if $r.tls.skipValidation }}{{ $_ := set $t "skipValidation" true }}{{ end -}}
{{- $_ := set $redis "tls" $t -}}
{{- end -}}
{{- toYaml (dict "apiVersion" "gateway.mulesoft.com/v1alpha1" "kind" "Gateway" "metadata" (dict "name" "shared-storage") "spec" (dict "sharedStorage" (dict "redis" $redis))) -}}
{{- end -}}

{{/*
The environment variables the shared-storage document reads, from the
Secrets named in the values.
*/}}
{{- define "flexgate.sharedStorageEnv" -}}
{{- $r := .Values.sharedStorage.redis -}}
{{- $vars := list -}}
{{- if $r.passwordSecret.name }}{{ $vars = append $vars (list "FLEXGATE_REDIS_PASSWORD" $r.passwordSecret.name $r.passwordSecret.key) }}{{ end -}}
{{- if and $r.sentinel.addresses $r.sentinel.passwordSecret.name }}{{ $vars = append $vars (list "FLEXGATE_REDIS_SENTINEL_PASSWORD" $r.sentinel.passwordSecret.name $r.sentinel.passwordSecret.key) }}{{ end -}}
{{- if $r.tls.enabled -}}
{{- if $r.tls.caSecret.name }}{{ $vars = append $vars (list "FLEXGATE_REDIS_CA" $r.tls.caSecret.name $r.tls.caSecret.key) }}{{ end -}}
{{- with $r.tls.clientCertSecret }}{{ $vars = append $vars (list "FLEXGATE_REDIS_TLS_CRT" . "tls.crt") }}{{ $vars = append $vars (list "FLEXGATE_REDIS_TLS_KEY" . "tls.key") }}{{ end -}}
{{- end -}}
{{- range $vars }}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ index . 1 | quote }}
      key: {{ index . 2 | quote }}
{{- end }}
{{- end -}}

{{/*
The session ticket key files the pods share, as a JSON list of their paths
in the order of gateway.sessionTicketKeys.keys (the first encrypts); "[]"
without a Secret. Fails on values that would mount no key, or keys in an
order the gateway cannot tell.
*/}}
{{- define "flexgate.sessionTicketKeyFiles" -}}
{{- $k := .Values.gateway.sessionTicketKeys -}}
{{- $files := list -}}
{{- if and $k.keys (not $k.secretName) -}}
{{- fail "gateway.sessionTicketKeys.keys is set but secretName is empty: name the Secret that holds the keys (kubectl create secret generic flex-gateway-ticket-keys --from-file=current.key)." -}}
{{- end -}}
{{- if $k.secretName -}}
{{- if not $k.keys -}}
{{- fail (printf "gateway.sessionTicketKeys.secretName is %q but keys is empty: list the Secret's keys to use, the one that encrypts new tickets first, e.g. keys: [current.key, previous.key]." $k.secretName) -}}
{{- end -}}
{{- range $k.keys -}}
{{- if has . $files -}}
{{- fail (printf "gateway.sessionTicketKeys.keys names %q twice: list each key once, the one that encrypts new tickets first." .) -}}
{{- end -}}
{{- $files = append $files . -}}
{{- end -}}
{{- $paths := list -}}
{{- range $files }}{{ $paths = append $paths (printf "%s/%s" (trimSuffix "/" $k.mountPath) .) }}{{ end -}}
{{- $files = $paths -}}
{{- end -}}
{{- toJson $files -}}
{{- end -}}

{{/*
The `config` value with gateway.sessionTicketKeys written into every
listener tls that names no sessionTicketKeys of its own.
*/}}
{{- define "flexgate.configWithTicketKeys" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $files := include "flexgate.sessionTicketKeyFiles" . | fromJsonArray -}}
{{- if $files -}}
{{- $tls := 0 -}}
{{- range (dig "spec" "listeners" list $cfg) -}}
{{- if and (kindIs "map" .) (kindIs "map" .tls) -}}
{{- $tls = add1 $tls -}}
{{- if not (hasKey .tls "sessionTicketKeys") -}}
{{- $_ := set .tls "sessionTicketKeys" $files -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if eq $tls 0 -}}
{{- fail "gateway.sessionTicketKeys is set, but `config` has no listener with tls (spec.listeners[].tls) to use them: a Flex ApiInstance config, or one without HTTPS listeners, cannot take them; remove gateway.sessionTicketKeys, or add an HTTPS listener" -}}
{{- end -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
