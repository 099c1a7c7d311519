{{/*
The SLO rules: the failure ratio of runs recorded over each burn-rate window (per agent and per
job), and multiwindow, multi-burn-rate alerts on the error budget (Google SRE workbook, ch. 5).
A run fails when its status is failed or timeout. One source for the PrometheusRule and for
deploy/prometheus/slo.yaml (scripts/render_alerts.py); promtool tests in
deploy/prometheus/slo.test.yaml.
*/}}
{{- define "agent-runs-exporter.sloGroups" -}}
{{- $slo := .Values.alerts.slo }}
{{- if $slo.enabled }}
{{- $budget := printf "(1 - %v)" $slo.target }}
{{- $failed := "agent_runs_total{status=~\"failed|timeout\"}" }}
- name: agent-runs-exporter-slo-ratios
  rules:
    {{- range $window := list $slo.page.shortWindow $slo.page.longWindow $slo.ticket.shortWindow $slo.ticket.longWindow | uniq }}
    - record: source_agent_id:agent_runs_failures:ratio_rate{{ $window }}
      expr: |
        sum by (source, agent_id) (rate({{ $failed }}[{{ $window }}]))
          / sum by (source, agent_id) (rate(agent_runs_total[{{ $window }}]))
    - record: job:agent_runs_failures:ratio_rate{{ $window }}
      expr: |
        sum by (job) (rate({{ $failed }}[{{ $window }}]))
          / sum by (job) (rate(agent_runs_total[{{ $window }}]))
    {{- end }}
- name: agent-runs-exporter-slo-alerts
  rules:
    {{- range $speed, $name := dict "page" "AgentRunsErrorBudgetBurnFast" "ticket" "AgentRunsErrorBudgetBurnSlow" }}
    {{- with index $slo $speed }}
    {{- if .enabled }}
    - alert: {{ $name }}
      expr: |
        source_agent_id:agent_runs_failures:ratio_rate{{ .longWindow }} > ({{ .burnRate }} * {{ $budget }})
        and source_agent_id:agent_runs_failures:ratio_rate{{ .shortWindow }} > ({{ .burnRate }} * {{ $budget }})
        and sum by (source, agent_id) (increase(agent_runs_total[{{ .longWindow }}])) >= {{ $slo.minRuns }}
      for: {{ .for }}
      labels:
        severity: {{ .severity }}
        slo: agent-runs-success
      annotations:
        summary: Agent {{`{{ $labels.agent_id }}`}} of {{`{{ $labels.source }}`}} burns its error budget {{ .burnRate }}x too fast ({{`{{ $value | humanizePercentage }}`}} of runs fail)
        description: Over {{ .longWindow }} and {{ .shortWindow }} more than {{ .burnRate }} times the error budget of a {{ mulf $slo.target 100 }}% run success objective failed (with at least {{ $slo.minRuns }} runs in {{ .longWindow }}); at this rate the {{ $slo.period }} budget lasts {{ divf (mul (trimSuffix "d" $slo.period | atoi) 24) .burnRate | printf "%.0f" }}h or less.
    {{- end }}
    {{- end }}
    {{- end }}
{{- end }}
{{- end }}
