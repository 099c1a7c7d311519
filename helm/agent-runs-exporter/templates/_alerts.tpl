{{/*
The alert rules, one source for the PrometheusRule and for deploy/prometheus/alerts.yaml
(scripts/render-alerts.py renders them with every alert on). Each has promtool tests in
deploy/prometheus/alerts.test.yaml.
*/}}
{{- define "agent-runs-exporter.alertGroups" -}}
{{- $a := .Values.alerts }}
{{- $job := $a.job }}
- name: agent-runs-exporter
  rules:
    {{- with $a.failureRatio }}
    {{- if .enabled }}
    - alert: AgentRunsFailureRatioHigh
      expr: |
        (
          sum by (source, agent_id) (increase(agent_runs_total{status=~"failed|timeout"}[{{ .window }}]))
            / sum by (source, agent_id) (increase(agent_runs_total[{{ .window }}]))
        ) > {{ .threshold }}
        and sum by (source, agent_id) (increase(agent_runs_total[{{ .window }}])) >= {{ .minRuns }}
      for: {{ .for }}
      labels:
        severity: {{ .severity }}
      annotations:
        summary: Agent {{`{{ $labels.agent_id }}`}} of {{`{{ $labels.source }}`}} fails {{`{{ $value | humanizePercentage }}`}} of its runs
        description: More than {{ mulf .threshold 100 }}% of the agent's runs failed or timed out over {{ .window }} (with at least {{ .minRuns }} runs).
    {{- end }}
    {{- end }}
    {{- with $a.durationP95 }}
    {{- if .enabled }}
    - alert: AgentRunDurationP95High
      expr: |
        histogram_quantile(0.95, sum by (source, agent_id, le) (rate(agent_run_duration_seconds_bucket[{{ .window }}]))) > {{ .seconds }}
        and sum by (source, agent_id) (increase(agent_run_duration_seconds_count[{{ .window }}])) >= {{ .minRuns }}
      for: {{ .for }}
      labels:
        severity: {{ .severity }}
      annotations:
        summary: '{{`{{ with $labels.agent_id }}Agent {{ . }} of {{ $labels.source }}{{ else }}Source {{ $labels.source }}{{ end }}`}} runs take {{`{{ $value | humanizeDuration }}`}} at p95'
        description: The 95th percentile of run duration over {{ .window }} is above {{ .seconds }} s.
    {{- end }}
    {{- end }}
    {{- with $a.costBurn }}
    {{- if .enabled }}
    - alert: AgentRunsCostBurnHigh
      expr: |
        sum by (source, agent_id) (increase(agent_run_cost_usd_sum[1h])) > {{ .usdPerHour }}
      for: {{ .for }}
      labels:
        severity: {{ .severity }}
      annotations:
        summary: '{{`{{ with $labels.agent_id }}Agent {{ . }} of {{ $labels.source }}{{ else }}Source {{ $labels.source }}{{ end }}`}} spent {{`{{ $value | printf "%.2f" }}`}} USD in the last hour'
        description: The agent's runs cost more than {{ .usdPerHour }} USD over the last hour.
    {{- end }}
    {{- end }}
    {{- with $a.exporterDown }}
    {{- if .enabled }}
    - alert: AgentRunsExporterDown
      expr: |
        up{job="{{ $job }}"} == 0
      for: {{ .for }}
      labels:
        severity: {{ .severity }}
      annotations:
        summary: agent-runs-exporter {{`{{ $labels.instance }}`}} cannot be scraped
        description: Prometheus has failed to scrape the exporter for {{ .for }}; no run metrics arrive.
    - alert: AgentRunsExporterAbsent
      expr: |
        absent(up{job="{{ $job }}"})
      for: {{ .for }}
      labels:
        severity: {{ .severity }}
      annotations:
        summary: No agent-runs-exporter target is scraped (job {{ $job }})
        description: The scrape job {{ $job }} has had no target for {{ .for }}; check the ServiceMonitor/PodMonitor and the workload.
    {{- end }}
    {{- end }}
    {{- with $a.pollStale }}
    {{- if .enabled }}
    - alert: AgentRunsPollStale
      expr: |
        time() - agent_runs_exporter_last_successful_poll_timestamp_seconds > {{ .seconds }}
      for: {{ .for }}
      labels:
        severity: {{ .severity }}
      annotations:
        summary: Source {{`{{ $labels.source }}`}} has not been polled successfully for {{`{{ $value | humanizeDuration }}`}}
        description: The exporter's last successful poll of the source is older than {{ .seconds }} s; its run metrics are stale. See agent_runs_exporter_poll_errors_total and the exporter's log.
    {{- end }}
    {{- end }}
    {{- with $a.pollingBehind }}
    {{- if .enabled }}
    - alert: AgentRunsPollingBehind
      expr: |
        agent_runs_exporter_oldest_poll_age_seconds > {{ .seconds }}
      for: {{ .for }}
      labels:
        severity: {{ .severity }}
      annotations:
        summary: An agent of source {{`{{ $labels.source }}`}} has gone {{`{{ $value | humanizeDuration }}`}} without a successful poll
        description: The request budget cannot keep up with the source's agents (threshold {{ .seconds }} s, 1.5 x max_poll_interval); runs of quiet agents are counted late. Raise max_requests_per_minute if the platform allows it, or max_poll_interval; see README "Large fleets".
    {{- end }}
    {{- end }}
    {{- with $a.throttling }}
    {{- if .enabled }}
    - alert: AgentRunsUpstreamThrottled
      expr: |
        sum by (source) (rate(agent_runs_exporter_api_requests_total{code="429"}[{{ .window }}]))
          / sum by (source) (rate(agent_runs_exporter_api_requests_total[{{ .window }}])) > {{ .ratio }}
      for: {{ .for }}
      labels:
        severity: {{ .severity }}
      annotations:
        summary: The platform throttles {{`{{ $value | humanizePercentage }}`}} of the requests of source {{`{{ $labels.source }}`}}
        description: Over {{ .window }} more than {{ mulf .ratio 100 }}% of upstream requests got 429; raise poll_interval or page_size, or shard fewer agents per account.
    {{- end }}
    {{- end }}
    {{- with $a.authFailures }}
    {{- if .enabled }}
    - alert: AgentRunsUpstreamAuthFailing
      expr: |
        sum by (source, reason) (increase(agent_runs_exporter_poll_errors_total{reason=~"unauthorized|forbidden"}[5m])) > 0
      for: {{ .for }}
      labels:
        severity: {{ .severity }}
      annotations:
        summary: Source {{`{{ $labels.source }}`}} is refused by the platform ({{`{{ $labels.reason }}`}})
        description: Polls fail with 401/403; the source's token is wrong, expired or lacks access. Its agents are not polled.
    {{- end }}
    {{- end }}
    {{- with $a.spansDropped }}
    {{- if .enabled }}
    - alert: AgentRunsSpansDropped
      expr: |
        sum by (job, instance) (rate(agent_runs_exporter_spans_exported_total{result="failure"}[{{ .window }}])) > 0
      for: {{ .for }}
      labels:
        severity: {{ .severity }}
      annotations:
        summary: agent-runs-exporter {{`{{ $labels.instance }}`}} is dropping spans
        description: Span exports to the OpenTelemetry collector have failed for {{ .for }}; run traces are lost. Metrics are unaffected.
    {{- end }}
    {{- end }}
    {{- with $a.shards }}
    {{- if .enabled }}
    - alert: AgentRunsShardsDisagree
      expr: |
        max by (job) (agent_runs_exporter_total_shards) != min by (job) (agent_runs_exporter_total_shards)
      for: {{ .for }}
      labels:
        severity: {{ .severity }}
      annotations:
        summary: The shards of {{`{{ $labels.job }}`}} disagree on the number of shards
        description: Instances run with different --total-shards, so some agents are polled twice and others not at all.
    - alert: AgentRunsShardMissing
      expr: |
        count by (job) (count_values by (job) ("shard", agent_runs_exporter_shard_ordinal))
          < max by (job) (agent_runs_exporter_total_shards)
      for: {{ .for }}
      labels:
        severity: {{ .severity }}
      annotations:
        summary: A shard of {{`{{ $labels.job }}`}} is missing or duplicated
        description: Fewer distinct shard ordinals are scraped than total_shards; the agents of the missing shard are not polled.
    {{- end }}
    {{- end }}
{{- end }}
