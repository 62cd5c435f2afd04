{{/* The name of the chart's objects: the release name, or <release>-meshd when it does not say meshd. */}}
{{- define "meshd.fullname" -}}
{{- if contains "meshd" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-meshd" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "meshd.selectorLabels" -}}
app.kubernetes.io/name: meshd
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "meshd.labels" -}}
{{ include "meshd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "meshd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "meshd.fullname" .) -}}
{{- else -}}
{{- required "serviceAccount.name: the existing ServiceAccount meshd runs as" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The leader Lease: meshd's default for the mesh, passed explicitly so that the Role and meshd agree. */}}
{{- define "meshd.leaseName" -}}
meshd-{{ .Values.meshName }}
{{- end -}}
