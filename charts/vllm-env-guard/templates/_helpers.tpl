{{/*
Resource names. The default is "<release>-env-guard" ("env-guard" alone when the release name
already contains it). Never "vllm" or "vllm-*": the chart's Service would inject VLLM_* variables
(VLLM_PORT=tcp://..., VLLM_ENV_GUARD_SERVICE_HOST, ...) into every pod of the namespace, which is
exactly what this webhook exists to stop.
*/}}
{{- define "veg.name" -}}
{{- default "env-guard" .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "veg.fullname" -}}
{{- $full := "" -}}
{{- if .Values.fullnameOverride -}}
{{- $full = .Values.fullnameOverride -}}
{{- else -}}
{{- $name := include "veg.name" . -}}
{{- if contains $name .Release.Name -}}
{{- $full = .Release.Name -}}
{{- else -}}
{{- $full = printf "%s-%s" .Release.Name $name -}}
{{- end -}}
{{- end -}}
{{- $full = $full | trunc 63 | trimSuffix "-" -}}
{{- if hasPrefix "vllm" (lower $full) -}}
{{- $prefix := $full | upper | replace "-" "_" | replace "." "_" -}}
{{- fail (printf "resource name %q starts with \"vllm\": its Service would inject %s_SERVICE_HOST, %s_PORT=tcp://<ip>:%v, ... into every pod of namespace %q, and vLLM reads VLLM_* variables (a Service named vllm breaks VLLM_PORT). Use a release name that does not start with vllm (e.g. `helm install env-guard ...`) or set fullnameOverride." $full $prefix $prefix .Values.service.port .Release.Namespace) -}}
{{- end -}}
{{- $full -}}
{{- end -}}

{{- define "veg.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "veg.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "veg.labels" -}}
helm.sh/chart: {{ include "veg.chart" . }}
{{ include "veg.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: admission-webhook
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "veg.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "veg.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "veg.tlsSecretName" -}}
{{- printf "%s-tls" (include "veg.fullname" .) -}}
{{- end -}}

{{- define "veg.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Checks that values.schema.json cannot state with a clear message: relations between values. */}}
{{- define "veg.validate" -}}
{{- if eq (int .Values.healthPort) 8443 -}}
{{- fail "healthPort must differ from 8443, the webhook's HTTPS port" -}}
{{- end -}}
{{- $actions := .Values.validatingAdmissionPolicy.validationActions -}}
{{- if and (has "Deny" $actions) (has "Warn" $actions) -}}
{{- fail "validatingAdmissionPolicy.validationActions: Deny and Warn cannot be combined (use [Deny, Audit] or [Warn, Audit])" -}}
{{- end -}}
{{- end -}}

{{/* The certificate mode: helm, cert-manager or self-managed (values.schema.json checks it). */}}
{{- define "veg.certMode" -}}
{{- .Values.certificates.mode -}}
{{- end -}}

{{/* The DNS names the serving certificate must hold: those of the Service. */}}
{{- define "veg.dnsNames" -}}
{{- $fullname := include "veg.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $fullname (printf "%s.%s" $fullname $ns) (printf "%s.%s.svc" $fullname $ns) (printf "%s.%s.svc.cluster.local" $fullname $ns) | toJson -}}
{{- end -}}

{{/* "true" when the pods talk to the API server: cluster awareness, or self-managed certificates. */}}
{{- define "veg.usesApi" -}}
{{- or .Values.clusterAwareness.enabled (eq (include "veg.certMode" .) "self-managed") -}}
{{- end -}}

{{/* The config file: .Values.config with the mode merged in. */}}
{{- define "veg.config" -}}
{{- $config := deepCopy (default dict .Values.config) -}}
{{- $server := deepCopy (default dict (get $config "server")) -}}
{{- $_ := set $server "mode" .Values.mode -}}
{{- $_ := set $config "server" $server -}}
{{- toYaml $config -}}
{{- end -}}
