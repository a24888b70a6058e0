{{/* Chart name, truncated to the DNS label limit. */}}
{{- define "credbroker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name; the operator Service appends "-operator", so stay under 54. */}}
{{- define "credbroker.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "credbroker.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "credbroker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "credbroker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "credbroker.labels" -}}
helm.sh/chart: {{ include "credbroker.chart" . }}
{{ include "credbroker.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: broker
app.kubernetes.io/part-of: credbroker
{{- end }}

{{- define "credbroker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "credbroker.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "credbroker.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "credbroker.issuer" -}}
{{- default (printf "http://%s.%s.svc.cluster.local:%v" (include "credbroker.fullname" .) .Release.Namespace .Values.listeners.httpPort) .Values.issuer }}
{{- end }}

{{- define "credbroker.tlsSecret" -}}
{{- default (printf "%s-tls" (include "credbroker.fullname" .)) .Values.tls.secretName }}
{{- end }}

{{- define "credbroker.signingSecret" -}}
{{- default (printf "%s-signing-keys" (include "credbroker.fullname" .)) .Values.signingKeys.existingSecret }}
{{- end }}

{{/* The StackExchange.Redis connection string: endpoints (Sentinels plus serviceName in sentinel mode) and TLS; the password comes from a file (Redis:PasswordFile). */}}
{{- define "credbroker.redisConfiguration" -}}
{{- $r := .Values.redis }}
{{- $parts := list }}
{{- if eq $r.mode "cluster" }}
{{- if not $r.cluster.nodes }}{{ fail "redis.mode=cluster needs redis.cluster.nodes (host:port seeds)" }}{{ end }}
{{- $parts = concat $parts $r.cluster.nodes }}
{{- else if eq $r.mode "sentinel" }}
{{- if not $r.sentinel.nodes }}{{ fail "redis.mode=sentinel needs redis.sentinel.nodes (the Sentinels' host:port)" }}{{ end }}
{{- if not $r.sentinel.serviceName }}{{ fail "redis.mode=sentinel needs redis.sentinel.serviceName (the monitored primary's name)" }}{{ end }}
{{- $parts = concat $parts $r.sentinel.nodes }}
{{- $parts = append $parts (printf "serviceName=%s" $r.sentinel.serviceName) }}
{{- else }}
{{- $parts = append $parts (printf "%s:%v" $r.standalone.host $r.standalone.port) }}
{{- end }}
{{- if $r.tls.enabled }}
{{- $parts = append $parts "ssl=true" }}
{{- with $r.tls.serverName }}{{ $parts = append $parts (printf "sslHost=%s" .) }}{{ end }}
{{- end }}
{{- with $r.extraOptions }}{{ $parts = append $parts . }}{{ end }}
{{- join "," $parts }}
{{- end }}

{{/* One trusted issuer in the broker's shape (Identity:Issuers / Operators:Issuers). */}}
{{- define "credbroker.issuerConfig" -}}
{{- $i := .issuer }}
{{- $c := dict "Issuer" $i.issuer "Audience" $i.audience "SubjectClaim" (default "sub" $i.subjectClaim) "JwksFile" (printf "/etc/credbroker/config/%s-issuer-%d.jwks.json" .kind .index) }}
{{- if $i.workloads }}
{{- $w := list }}
{{- range $i.workloads }}{{ $w = append $w (dict "Subject" .subject "Agent" .agent) }}{{ end }}
{{- $_ := set $c "Workloads" $w }}
{{- end }}
{{- toJson $c }}
{{- end }}

{{/* appsettings.Production.json: every key is a real BrokerOptions setting (the chart tests bind it). */}}
{{- define "credbroker.appsettings" -}}
{{- $v := .Values }}
{{- if and (not $v.tls.enabled) (not $v.listeners.allowPlaintext) }}
{{- fail "tls.enabled=false needs listeners.allowPlaintext=true (only when a mesh sidecar terminates TLS): the broker refuses plaintext gRPC on a non-loopback address" }}
{{- end }}
{{- $listen := dict "Address" $v.listeners.address "HttpPort" (int $v.listeners.httpPort) "AgentPort" (int $v.listeners.agentPort) "OperatorPort" (int $v.listeners.operatorPort) "ConsolePort" (ternary (int $v.listeners.consolePort) 0 $v.console.enabled) }}
{{- if $v.tls.enabled }}
{{- $tls := dict "CertificateFile" "/etc/credbroker/tls/tls.crt" "KeyFile" "/etc/credbroker/tls/tls.key" }}
{{- if $v.tls.clientCa.enabled }}
{{- $_ := set $tls "ClientCaFile" (printf "/etc/credbroker/client-ca/%s" $v.tls.clientCa.key) }}
{{- $_ := set $tls "RequireClientCertificate" $v.tls.clientCa.requireClientCertificate }}
{{- end }}
{{- $_ := set $listen "Tls" $tls }}
{{- else }}
{{- $_ := set $listen "AllowPlaintext" true }}
{{- end }}
{{- $redis := dict "Configuration" (include "credbroker.redisConfiguration" .) }}
{{- if $v.redis.auth.existingSecret }}{{ $_ := set $redis "PasswordFile" (printf "/etc/credbroker/redis-auth/%s" $v.redis.auth.key) }}{{ end }}
{{- if and $v.redis.tls.enabled $v.redis.tls.caSecret }}{{ $_ := set $redis "CaFile" (printf "/etc/credbroker/redis-ca/%s" $v.redis.tls.caKey) }}{{ end }}
{{- with $v.redis.user }}{{ $_ := set $redis "User" . }}{{ end }}
{{- with $v.redis.timeout }}{{ $_ := set $redis "Timeout" . }}{{ end }}
{{- if gt (int $v.redis.waitReplicas) 0 }}{{ $_ := set $redis "WaitReplicas" (int $v.redis.waitReplicas) }}{{ end }}
{{- with $v.redis.waitTimeout }}{{ $_ := set $redis "WaitTimeout" . }}{{ end }}
{{- if $v.redis.waitForLeaseWrites }}
{{- if not (gt (int $v.redis.waitReplicas) 0) }}{{ fail "redis.waitForLeaseWrites needs redis.waitReplicas > 0 (the replicas every lease write waits for)" }}{{ end }}
{{- $_ := set $redis "WaitForLeaseWrites" true }}
{{- end }}
{{- $signing := dict "KeyDirectory" "/etc/credbroker/signing" }}
{{- with $v.signingKeys.rotateEvery }}{{ $_ := set $signing "RotateEvery" . }}{{ end }}
{{- with $v.signingKeys.publishLead }}{{ $_ := set $signing "PublishLead" . }}{{ end }}
{{- $agentsFile := printf "/etc/credbroker/config/agents.yaml" }}
{{- if $v.agents.existingConfigMap }}{{ $agentsFile = printf "/etc/credbroker/agents/%s" $v.agents.existingConfigMapKey }}{{ end }}
{{- $issuers := list }}
{{- range $i, $issuer := $v.identity.issuers }}{{ $issuers = append $issuers (include "credbroker.issuerConfig" (dict "issuer" $issuer "kind" "agent" "index" $i) | fromJson) }}{{ end }}
{{- $opIssuers := list }}
{{- range $i, $issuer := $v.operators.issuers }}{{ $opIssuers = append $opIssuers (include "credbroker.issuerConfig" (dict "issuer" $issuer "kind" "operator" "index" $i) | fromJson) }}{{ end }}
{{- $grants := list }}
{{- range $v.operators.grants }}
{{- $g := dict "Roles" .roles }}
{{- with .issuer }}{{ $_ := set $g "Issuer" . }}{{ end }}
{{- with .subject }}{{ $_ := set $g "Subject" . }}{{ end }}
{{- with .group }}{{ $_ := set $g "Group" . }}{{ end }}
{{- with .certificate }}{{ $_ := set $g "Certificate" . }}{{ end }}
{{- $grants = append $grants $g }}
{{- end }}
{{- $cb := dict "Issuer" (include "credbroker.issuer" .) "AgentsFile" $agentsFile "Listen" $listen "Redis" $redis "Signing" $signing "Identity" (dict "Issuers" $issuers) "Operators" (dict "Issuers" $opIssuers "Subjects" $v.operators.subjects "Grants" $grants) }}
{{- if $v.console.enabled }}
{{- $oidc := dict "Authority" (required "console.oidc.authority is required with console.enabled" $v.console.oidc.authority) "ClientId" (required "console.oidc.clientId is required with console.enabled" $v.console.oidc.clientId) "Scopes" $v.console.oidc.scopes }}
{{- if $v.console.oidc.clientSecretName }}{{ $_ := set $oidc "ClientSecretFile" "/etc/credbroker/console-oidc/client-secret" }}{{ end }}
{{- $console := dict "Oidc" $oidc }}
{{- with $v.console.publicUrl }}{{ $_ := set $console "PublicUrl" . }}{{ end }}
{{- with $v.console.sessionLifetime }}{{ $_ := set $console "SessionLifetime" . }}{{ end }}
{{- $hooks := list }}
{{- range $i, $e := $v.console.webhooks.endpoints }}{{ $hooks = append $hooks (dict "Url" $e.url "SecretFile" (printf "/etc/credbroker/webhooks/%d/secret" $i)) }}{{ end }}
{{- $webhooks := dict "Endpoints" $hooks }}
{{- with $v.console.webhooks.queueCapacity }}{{ $_ := set $webhooks "QueueCapacity" (int .) }}{{ end }}
{{- with $v.console.webhooks.maxAttempts }}{{ $_ := set $webhooks "MaxAttempts" (int .) }}{{ end }}
{{- with $v.console.webhooks.initialBackoff }}{{ $_ := set $webhooks "InitialBackoff" . }}{{ end }}
{{- with $v.console.webhooks.maxBackoff }}{{ $_ := set $webhooks "MaxBackoff" . }}{{ end }}
{{- with $v.console.webhooks.timeout }}{{ $_ := set $webhooks "Timeout" . }}{{ end }}
{{- $_ := set $console "Webhooks" $webhooks }}
{{- $_ := set $cb "Console" $console }}
{{- end }}
{{- $clock := dict "Source" $v.clock.source }}
{{- with $v.clock.syncInterval }}{{ $_ := set $clock "SyncInterval" . }}{{ end }}
{{- with $v.clock.warnSkew }}{{ $_ := set $clock "WarnSkew" . }}{{ end }}
{{- $_ := set $cb "Clock" $clock }}
{{- $audit := dict }}
{{- with $v.audit.redis.nodes }}
{{- $auditRedis := . }}
{{- with $v.audit.redis.serviceName }}{{ $auditRedis = append $auditRedis (printf "serviceName=%s" .) }}{{ end }}
{{- if $v.redis.tls.enabled }}
{{- $auditRedis = append $auditRedis "ssl=true" }}
{{- with (default $v.redis.tls.serverName $v.audit.redis.tlsServerName) }}{{ $auditRedis = append $auditRedis (printf "sslHost=%s" .) }}{{ end }}
{{- end }}
{{- with $v.redis.extraOptions }}{{ $auditRedis = append $auditRedis . }}{{ end }}
{{- $_ := set $audit "RedisConfiguration" (join "," $auditRedis) }}
{{- end }}
{{- with $v.audit.followPollInterval }}{{ $_ := set $audit "FollowPollInterval" . }}{{ end }}
{{- with $v.audit.refusalWindow }}{{ $_ := set $audit "RefusalWindow" . }}{{ end }}
{{- with $v.audit.maxBatch }}{{ $_ := set $audit "MaxBatch" (int .) }}{{ end }}
{{- with $v.audit.checkpointInterval }}{{ $_ := set $audit "CheckpointInterval" (int .) }}{{ end }}
{{- with $v.audit.maxRecords }}{{ $_ := set $audit "MaxRecords" (int64 .) }}{{ end }}
{{- with $v.audit.maxAge }}{{ $_ := set $audit "MaxAge" . }}{{ end }}
{{- if $v.audit.checkpointKey.existingSecret }}{{ $_ := set $audit "CheckpointKeyFile" "/etc/credbroker/audit-checkpoint/checkpoint-key" }}{{ end }}
{{- if $audit }}{{ $_ := set $cb "Audit" $audit }}{{ end }}
{{- $dpop := dict "Enabled" $v.dpop.enabled }}
{{- with $v.dpop.agentUris }}{{ $_ := set $dpop "AgentUris" . }}{{ end }}
{{- with $v.dpop.maxProofAge }}{{ $_ := set $dpop "MaxProofAge" . }}{{ end }}
{{- with $v.dpop.maxProofFuture }}{{ $_ := set $dpop "MaxProofFuture" . }}{{ end }}
{{- with $v.dpop.maxProofSize }}{{ $_ := set $dpop "MaxProofSize" (int .) }}{{ end }}
{{- with $v.dpop.algorithms }}{{ $_ := set $dpop "Algorithms" . }}{{ end }}
{{- $_ := set $cb "Dpop" $dpop }}
{{- $ssf := dict "Enabled" $v.ssf.enabled }}
{{- $receivers := list }}
{{- range $i, $r := $v.ssf.receivers }}
{{- $receiver := dict "Id" $r.id "SecretFile" (printf "/etc/credbroker/ssf/%d/secret" $i) }}
{{- with $r.audience }}{{ $_ := set $receiver "Audience" . }}{{ end }}
{{- $receivers = append $receivers $receiver }}
{{- end }}
{{- if $receivers }}{{ $_ := set $ssf "Receivers" $receivers }}{{ end }}
{{- with $v.ssf.maxLongPoll }}{{ $_ := set $ssf "MaxLongPoll" . }}{{ end }}
{{- with $v.ssf.maxEventsPerPoll }}{{ $_ := set $ssf "MaxEventsPerPoll" (int .) }}{{ end }}
{{- with $v.ssf.pushTimeout }}{{ $_ := set $ssf "PushTimeout" . }}{{ end }}
{{- with $v.ssf.pushRetryInitial }}{{ $_ := set $ssf "PushRetryInitial" . }}{{ end }}
{{- with $v.ssf.pushRetryMax }}{{ $_ := set $ssf "PushRetryMax" . }}{{ end }}
{{- with $v.ssf.streamRefreshInterval }}{{ $_ := set $ssf "StreamRefreshInterval" . }}{{ end }}
{{- if $v.ssf.allowHttpPushEndpoints }}{{ $_ := set $ssf "AllowHttpPushEndpoints" true }}{{ end }}
{{- with $v.ssf.maxStreamsPerReceiver }}{{ $_ := set $ssf "MaxStreamsPerReceiver" (int .) }}{{ end }}
{{- $_ := set $cb "Ssf" $ssf }}
{{- $leases := dict }}
{{- with $v.leases.sweepInterval }}{{ $_ := set $leases "SweepInterval" . }}{{ end }}
{{- with $v.leases.revocationPollInterval }}{{ $_ := set $leases "RevocationPollInterval" . }}{{ end }}
{{- with $v.leases.revocationRetention }}{{ $_ := set $leases "RevocationRetention" . }}{{ end }}
{{- if $leases }}{{ $_ := set $cb "Leases" $leases }}{{ end }}
{{- $telemetry := dict }}
{{- with $v.telemetry.otlpEndpoint }}{{ $_ := set $telemetry "OtlpEndpoint" . }}{{ end }}
{{- with $v.telemetry.serviceName }}{{ $_ := set $telemetry "ServiceName" . }}{{ end }}
{{- if $telemetry }}{{ $_ := set $cb "Telemetry" $telemetry }}{{ end }}
{{- dict "CredBroker" $cb | toPrettyJson }}
{{- end }}
