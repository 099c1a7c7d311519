{{/* Names, labels and checks shared by every template. */}}

{{- define "agent-runs-exporter.name" -}}
{{- default "agent-runs-exporter" .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "agent-runs-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "agent-runs-exporter.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "agent-runs-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agent-runs-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "agent-runs-exporter.labels" -}}
{{ include "agent-runs-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | default "dev" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 }}
{{- end }}

{{- define "agent-runs-exporter.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The token Secret's name, or "" when no source has a token. */}}
{{- define "agent-runs-exporter.tokenSecret" -}}
{{- if .Values.tokens.existingSecret }}
{{- .Values.tokens.existingSecret }}
{{- else if .Values.tokens.values }}
{{- printf "%s-tokens" (include "agent-runs-exporter.fullname" .) }}
{{- end }}
{{- end }}

{{/* The Secret key holding a source's token ("" for none). */}}
{{- define "agent-runs-exporter.tokenKey" -}}
{{- $key := hasKey .source "tokenSecretKey" | ternary .source.tokenSecretKey .source.name }}
{{- if and $key (include "agent-runs-exporter.tokenSecret" .root) }}
{{- if or .root.Values.tokens.existingSecret (hasKey .root.Values.tokens.values $key) }}
{{- $key }}
{{- end }}
{{- end }}
{{- end }}

{{- define "agent-runs-exporter.tokenEnv" -}}
{{- printf "SOURCE_TOKEN_%s" (regexReplaceAll "[^A-Za-z0-9]" .name "_" | upper) }}
{{- end }}

{{/* The exporter's config file: the user's config plus listen, state and sources. */}}
{{- define "agent-runs-exporter.config" -}}
{{- $sources := list }}
{{- range .Values.sources }}
{{- $source := omit . "tokenSecretKey" }}
{{- if include "agent-runs-exporter.tokenKey" (dict "source" . "root" $) }}
{{- $source = set $source "token" (printf "${%s}" (include "agent-runs-exporter.tokenEnv" .)) }}
{{- end }}
{{- $sources = append $sources $source }}
{{- end }}
{{- $fixed := dict "listen" (printf "0.0.0.0:%d" (int .Values.service.port)) "state" (dict "path" "/var/lib/agent-runs-exporter/state.db") "sources" $sources }}
{{- if .Values.web.existingSecret }}
{{- $_ := set $fixed "web" (dict "config_file" (printf "/etc/agent-runs-exporter-web/%s" .Values.web.configKey) "health_without_auth" .Values.web.healthWithoutAuth) }}
{{- end }}
{{- if .Values.sharding.enabled }}
{{- /* Every pod reads the same total; its own shard comes from its ordinal, in the environment. */}}
{{- $_ := set $fixed "sharding" (dict "total_shards" (int .Values.replicas)) }}
{{- end }}
{{- toYaml (merge $fixed (deepCopy .Values.config)) }}
{{- end }}

{{/* Stop the render with a clear message when the values contradict each other. */}}
{{- define "agent-runs-exporter.validate" -}}
{{- if not .Values.sources }}
{{- fail "agent-runs-exporter: no sources configured: set sources (name, platform, base_url and, unless discovered, agents) for at least one platform account" }}
{{- end }}
{{- range $index, $source := .Values.sources }}
{{- if hasKey $source "token" }}
{{- fail (printf "agent-runs-exporter: sources[%d] (%s) has an inline token: tokens never go in the chart's values (they would be stored in the release and the ConfigMap). Create a Secret with one key per source name (kubectl create secret generic agent-tokens --from-literal=%s=...) and set tokens.existingSecret=agent-tokens (or the source's tokenSecretKey for another key); or put it in tokens.values and the chart makes the Secret" $index (toString $source.name) (toString $source.name)) }}
{{- end }}
{{- end }}
{{- if gt (int .Values.replicas) 1 }}
{{- if not (and (eq .Values.mode "statefulset") .Values.sharding.enabled) }}
{{- fail (printf "agent-runs-exporter: replicas=%d without sharding would poll every agent %d times and double every series: set mode=statefulset and sharding.enabled=true, or replicas=1" (int .Values.replicas) (int .Values.replicas)) }}
{{- end }}
{{- end }}
{{- if and .Values.sharding.enabled (ne .Values.mode "statefulset") }}
{{- fail "agent-runs-exporter: sharding.enabled needs mode=statefulset (each pod's shard is its ordinal)" }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled .Values.podMonitor.enabled }}
{{- fail "agent-runs-exporter: enable serviceMonitor or podMonitor, not both: every series would be scraped twice" }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (eq .Values.mode "sidecar") }}
{{- fail "agent-runs-exporter: mode=sidecar has no Service to monitor: use podMonitor with podMonitor.selector" }}
{{- end }}
{{- range $kind := list "serviceMonitor" "podMonitor" "prometheusRule" }}
{{- $settings := index $.Values $kind }}
{{- $api := printf "monitoring.coreos.com/v1/%s" (title $kind) }}
{{- if and $settings.enabled $settings.requireCRD (not ($.Capabilities.APIVersions.Has $api)) }}
{{- fail (printf "agent-runs-exporter: %s.enabled but the cluster does not serve %s (install the Prometheus Operator CRDs, or set %s.requireCRD=false)" $kind $api $kind) }}
{{- end }}
{{- end }}
{{- end }}
