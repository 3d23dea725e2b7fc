{{/* Names and labels shared by every object. */}}

{{- define "gantry.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gantry.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end -}}

{{- define "gantry.labels" -}}
{{ include "gantry.selectorLabels" . }}
app.kubernetes.io/part-of: gantry
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* repository:tag, or repository@digest when a digest is given (pinned). */}}
{{- define "gantry.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "gantry.tlsSecret" -}}
{{- if .Values.tls.certManager.enabled -}}
{{- printf "%s-tls" (include "gantry.fullname" .) -}}
{{- else -}}
{{- required "tls.existingSecret is required without tls.certManager.enabled (a kubernetes.io/tls Secret, e.g. from gantry cert)" .Values.tls.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "gantry.authSecret" -}}
{{- .Values.auth.existingSecret | default (printf "%s-auth" (include "gantry.fullname" .)) -}}
{{- end -}}

{{/* Checks the values once; every template includes it. */}}
{{- define "gantry.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.database.existingSecret) -}}
{{- fail "replicaCount > 1 needs Postgres: set database.existingSecret (SQLite is one process's database)" -}}
{{- end -}}
{{- if not (has .Values.admission.mode (list "enforce" "warn" "audit")) -}}
{{- fail "admission.mode must be enforce, warn or audit" -}}
{{- end -}}
{{- if and (not .Values.auth.existingSecret) (not .Values.auth.token) -}}
{{- fail "auth needs auth.existingSecret or auth.token: the API, /metrics and webhook senders take a bearer token (Gantry refuses anonymous callers off loopback)" -}}
{{- end -}}
{{- if and .Values.rbac.pullSecretNamespaces (not .Values.admission.clientAuth.caSecret) -}}
{{- fail "rbac.pullSecretNamespaces needs admission.clientAuth.caSecret: pull secrets are read only for reviews from the verified API server" -}}
{{- end -}}
{{- if and .Values.admission.clientAuth.names (not .Values.admission.clientAuth.caSecret) -}}
{{- fail "admission.clientAuth.names needs admission.clientAuth.caSecret" -}}
{{- end -}}
{{- if hasKey .Values.admission "platform" -}}
{{- fail "admission.platform was replaced by admission.platforms (every platform is judged by default)" -}}
{{- end -}}
{{- end -}}
