{{/*
The exporter's container and volumes, used by this chart's Deployment and StatefulSet and, in
sidecar mode, by your own chart to add the exporter to an existing pod:

  containers:
    {{- include "agent-runs-exporter.container" (index .Subcharts "agent-runs-exporter") | nindent 4 }}
  volumes:
    {{- include "agent-runs-exporter.volumes" (index .Subcharts "agent-runs-exporter") | nindent 4 }}
*/}}

{{- define "agent-runs-exporter.container" -}}
- name: agent-runs-exporter
  image: {{ include "agent-runs-exporter.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args:
    - run
    - --config=/etc/agent-runs-exporter/config.yaml
  env:
    {{- if .Values.sharding.enabled }}
    - name: AGENT_RUNS_EXPORTER_SHARDING__SHARD
      valueFrom:
        fieldRef:
          fieldPath: metadata.labels['apps.kubernetes.io/pod-index']
    {{- end }}
    {{- range .Values.sources }}
    {{- $key := include "agent-runs-exporter.tokenKey" (dict "source" . "root" $) }}
    {{- if $key }}
    - name: {{ include "agent-runs-exporter.tokenEnv" . }}
      valueFrom:
        secretKeyRef:
          name: {{ include "agent-runs-exporter.tokenSecret" $ }}
          key: {{ $key }}
    {{- end }}
    {{- end }}
    {{- with .Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: metrics
      containerPort: {{ int .Values.service.port }}
      protocol: TCP
  {{- $scheme := dict "httpGet" (dict "scheme" (.Values.web.tls | ternary "HTTPS" "HTTP")) }}
  livenessProbe:
    {{- toYaml (mergeOverwrite (deepCopy .Values.livenessProbe) $scheme) | nindent 4 }}
  readinessProbe:
    {{- toYaml (mergeOverwrite (deepCopy .Values.readinessProbe) $scheme) | nindent 4 }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: agent-runs-exporter-config
      mountPath: /etc/agent-runs-exporter
      readOnly: true
    - name: agent-runs-exporter-state
      mountPath: /var/lib/agent-runs-exporter
    - name: agent-runs-exporter-tmp
      mountPath: /tmp
    {{- if .Values.web.existingSecret }}
    - name: agent-runs-exporter-web
      mountPath: /etc/agent-runs-exporter-web
      readOnly: true
    {{- end }}
{{- end }}

{{/* The config, state and /tmp volumes; the state volume is left out when a claim template makes it. */}}
{{- define "agent-runs-exporter.volumes" -}}
- name: agent-runs-exporter-config
  configMap:
    name: {{ include "agent-runs-exporter.fullname" . }}
{{- if ne .Values.mode "statefulset" }}
- name: agent-runs-exporter-state
  {{- if and .Values.persistence.enabled (eq .Values.mode "deployment") }}
  persistentVolumeClaim:
    claimName: {{ include "agent-runs-exporter.fullname" . }}
  {{- else }}
  emptyDir: {}
  {{- end }}
{{- else if not .Values.persistence.enabled }}
- name: agent-runs-exporter-state
  emptyDir: {}
{{- end }}
- name: agent-runs-exporter-tmp
  emptyDir:
    medium: Memory
    sizeLimit: 16Mi
{{- if .Values.web.existingSecret }}
- name: agent-runs-exporter-web
  secret:
    secretName: {{ .Values.web.existingSecret }}
{{- end }}
{{- end }}

{{/* The pod template of this chart's own workload. */}}
{{- define "agent-runs-exporter.podTemplate" -}}
metadata:
  labels:
    {{- include "agent-runs-exporter.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include "agent-runs-exporter.config" . | sha256sum }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: 30
  containers:
    {{- include "agent-runs-exporter.container" . | nindent 4 }}
    {{- with .Values.extraContainers }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  volumes:
    {{- include "agent-runs-exporter.volumes" . | nindent 4 }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
