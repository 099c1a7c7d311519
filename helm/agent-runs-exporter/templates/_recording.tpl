{{/*
Recording rules for the dashboard: the per-agent rates its heavy panels aggregate, recorded once
per evaluation instead of re-read from every raw series at each refresh. They drop the labels the
panels never group by (platform, disposition; status for the duration buckets). The dashboard's
"Queries" variable reads them when set to "recording rules". One source for the PrometheusRule and
deploy/prometheus/recording.yaml (scripts/render_alerts.py); tests in tests/deploy/test_recording.py.
*/}}
{{- define "agent-runs-exporter.recordingGroups" -}}
{{- if .Values.prometheusRule.recordingRules }}
- name: agent-runs-exporter-dashboard
  rules:
    - record: source_agent_id_status:agent_runs:rate5m
      expr: sum by (source, agent_id, status) (rate(agent_runs_total[5m]))
    - record: source_agent_id_le:agent_run_duration_seconds_bucket:rate5m
      expr: sum by (source, agent_id, le) (rate(agent_run_duration_seconds_bucket[5m]))
    - record: source_agent_id_type:agent_run_tokens_sum:rate5m
      expr: sum by (source, agent_id, type) (rate(agent_run_tokens_sum[5m]))
    - record: source_agent_id:agent_run_cost_usd_sum:rate5m
      expr: sum by (source, agent_id) (rate(agent_run_cost_usd_sum[5m]))
{{- end }}
{{- end }}
