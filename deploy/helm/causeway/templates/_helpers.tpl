{{/* Name of the chart and the release-qualified base name of every object. */}}
{{- define "causeway.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "causeway.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* causeway.component: "<fullname>-<component>"; call with (list $ "gateway"). */}}
{{- define "causeway.component" -}}
{{- $ := index . 0 -}}
{{- printf "%s-%s" (include "causeway.fullname" $) (index . 1) -}}
{{- end -}}

{{/* causeway.commonLabels: on every object, beside its selector labels. */}}
{{- define "causeway.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: causeway
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
causeway.dev/cluster: {{ .Values.cluster | quote }}
{{- end -}}

{{/* causeway.labels: an object of no single component. */}}
{{- define "causeway.labels" -}}
{{ include "causeway.commonLabels" . }}
app.kubernetes.io/name: {{ include "causeway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* causeway.selector: the labels that select one component's pods; (list $ "gateway"). */}}
{{- define "causeway.selector" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "causeway.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "causeway.componentLabels" -}}
{{ include "causeway.commonLabels" (index . 0) }}
{{ include "causeway.selector" . }}
{{- end -}}

{{- define "causeway.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* causeway.required checks the values every install needs. */}}
{{- define "causeway.required" -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$" (required "cluster is required (a DNS label; `causeway join` writes it)" .Values.cluster)) -}}
{{- fail (printf "cluster %q is not a DNS label" .Values.cluster) -}}
{{- end -}}
{{- if not .Values.etcd.endpoints -}}
{{- fail "etcd.endpoints is required (the federation etcd)" -}}
{{- end -}}
{{- if not .Values.gateway.advertise -}}
{{- fail "gateway.advertise is required: the host:port addresses peer gateways dial" -}}
{{- end -}}
{{- if not (has .Values.gateway.service.type (list "LoadBalancer" "NodePort" "ClusterIP")) -}}
{{- fail (printf "gateway.service.type %q: want LoadBalancer, NodePort or ClusterIP" .Values.gateway.service.type) -}}
{{- end -}}
{{- if and (or .Values.etcd.tls.ca .Values.etcd.tls.clientCert .Values.etcd.username) (not .Values.etcd.secretName) -}}
{{- fail "etcd.secretName is required with etcd.tls or etcd.username" -}}
{{- end -}}
{{- end -}}

{{/* causeway.clientConfig: what the gateway and DNS shim share; (list $ "gateway"). */}}
{{- define "causeway.clientConfig" -}}
{{- $ := index . 0 -}}
{{- $fed := printf "%s.%s.svc" (include "causeway.component" (list $ "federator")) $.Release.Namespace -}}
cluster: {{ $.Values.cluster | quote }}
domain: {{ $.Values.domain | quote }}
federator: {{ printf "%s:%v" $fed $.Values.federator.ports.grpc | quote }}
bootstrap: {{ printf "%s:%v" $fed $.Values.federator.ports.bootstrap | quote }}
caFile: /etc/causeway/ca/bundle.crt
tokenFile: /var/run/secrets/causeway/token
{{- end -}}

{{/* causeway.pod: pod-level settings shared by every component; (list $ .Values.gateway). */}}
{{- define "causeway.podSettings" -}}
{{- $ := index . 0 -}}
{{- $c := index . 1 -}}
{{- with $.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $.Values.podSecurityContext | nindent 2 }}
{{- with $c.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* causeway.probes: liveness /healthz and readiness /readyz on the admin port. */}}
{{- define "causeway.probes" -}}
livenessProbe:
  httpGet: {path: /healthz, port: admin}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: admin}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
startupProbe:
  httpGet: {path: /healthz, port: admin}
  periodSeconds: 2
  failureThreshold: 60
{{- end -}}

{{/* causeway.tokenVolume: the projected ServiceAccount token for Certs.Sign. */}}
{{- define "causeway.tokenVolume" -}}
- name: token
  projected:
    sources:
      - serviceAccountToken:
          path: token
          audience: {{ .Values.tokenAudience | quote }}
          expirationSeconds: {{ .Values.tokenExpirationSeconds }}
- name: bundle
  secret:
    secretName: {{ .Values.ca.secretName }}
    items:
      - key: bundle.crt
        path: bundle.crt
{{- end -}}
