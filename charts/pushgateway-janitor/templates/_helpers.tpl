{{/* Chart name, 63 characters at most. */}}
{{- define "pgwj.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, with the chart name unless the release name holds it. */}}
{{- define "pgwj.fullname" -}}
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

{{- define "pgwj.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pgwj.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pgwj.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pgwj.labels" -}}
helm.sh/chart: {{ include "pgwj.chart" . }}
{{ include "pgwj.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pushgateway-janitor
{{- end }}

{{- define "pgwj.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pgwj.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "pgwj.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Controller mode: the Deployment, Service, RBAC and friends exist only then. */}}
{{- define "pgwj.controller" -}}
{{- if eq .Values.mode "controller" }}true{{ end }}
{{- end }}

{{/* Leader election is on exactly when more than one controller replica runs. */}}
{{- define "pgwj.leaderElection" -}}
{{- if and (eq .Values.mode "controller") (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{- define "pgwj.leaseName" -}}
{{- default (include "pgwj.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* Pod template parts shared by the Deployment and the CronJob. */}}
{{- define "pgwj.podMetadata" -}}
labels:
  {{- include "pgwj.selectorLabels" . | nindent 2 }}
  {{- with .Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .Values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "pgwj.podScheduling" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.extraVolumes }}
volumes:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "pgwj.containerCommon" -}}
image: {{ include "pgwj.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
resources:
  {{- toYaml .Values.resources | nindent 2 }}
{{- with .Values.extraVolumeMounts }}
volumeMounts:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The global flags, before the subcommand's. */}}
{{- define "pgwj.globalArgs" -}}
- --log-level={{ .Values.logLevel }}
- --log-format={{ .Values.logFormat }}
{{- end }}

{{/* What the controller does with the API in a watched namespace, and nothing more. No wildcards. */}}
{{- define "pgwj.policyRules" -}}
- apiGroups: ["pgw-janitor.dev"]
  resources: ["pushgatewayretentions"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["pgw-janitor.dev"]
  resources: ["pushgatewayretentions/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# `service` sources: the replicas behind a Service.
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list", "watch"]
# Credentials that policies reference.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
  {{- with .Values.rbac.secretNames }}
  resourceNames:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
