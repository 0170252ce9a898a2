{{/*
Chart name.
*/}}
{{- define "crm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, the prefix of every resource name.
Truncated so that "<fullname>-<service>" stays a valid DNS label.
*/}}
{{- define "crm.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "crm.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of one service's resources (Deployment, Service, PDB).
Usage: include "crm.componentName" (dict "root" $ "name" "customer-core")
*/}}
{{- define "crm.componentName" -}}
{{- printf "%s-%s" (include "crm.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "crm.labels" -}}
helm.sh/chart: {{ include "crm.chart" . }}
{{ include "crm.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "crm.name" . }}
{{- end }}

{{/*
Selector labels.
*/}}
{{- define "crm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "crm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of one service's resources.
Usage: include "crm.componentLabels" (dict "root" $ "name" "customer-core")
*/}}
{{- define "crm.componentLabels" -}}
{{ include "crm.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/*
Selector labels of one service.
Usage: include "crm.componentSelectorLabels" (dict "root" $ "name" "customer-core")
*/}}
{{- define "crm.componentSelectorLabels" -}}
{{ include "crm.selectorLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/*
Name of the ServiceAccount to use.
*/}}
{{- define "crm.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "crm.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the Secret holding the connection strings.
*/}}
{{- define "crm.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- printf "%s-connections" (include "crm.fullname" .) }}
{{- end }}
{{- end }}

{{/*
Image of one service: <repository>/crm-<service>:<tag or appVersion>.
Usage: include "crm.image" (dict "root" $ "name" "customer-core")
*/}}
{{- define "crm.image" -}}
{{- $repo := .root.Values.image.repository | trimSuffix "/" }}
{{- $tag := .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- printf "%s/crm-%s:%s" $repo .name $tag }}
{{- end }}

{{/*
In-cluster gRPC URL of a service, e.g. http://<fullname>-customer-core:50051.
Usage: include "crm.grpcUrl" (dict "root" $ "name" "customer-core")
*/}}
{{- define "crm.grpcUrl" -}}
{{- $svc := index .root.Values.services .name }}
{{- printf "http://%s:%v" (include "crm.componentName" .) (int $svc.grpcPort) }}
{{- end }}
