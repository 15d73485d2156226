// Log alerts on Application Insights: a failed or late chargeback run, usage spooled (Redis
// unavailable), quarantined events, and budget soft thresholds crossed. The log markers are the
// app's own (a test checks each is still in the code).

import { tagMap } from '../types.bicep'

param location string
param tags tagMap
param namePrefix string
param appInsightsId string
@description('E-mail addresses notified; empty: alerts without notifications.')
param emails string[] = []

var alerts = [
  {
    name: 'chargeback-run-failed'
    description: 'A chargeback run failed, or a step waits for an admin (invalid configuration or prices).'
    severity: 1
    frequency: 'PT15M'
    window: 'PT1H'
    query: 'union (requests | where name has "chargebackRun" and success == false), (traces | where message has "CHARGEBACK_WAITING" or message has "CHARGEBACK_PRICES_INVALID")'
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    name: 'chargeback-run-late'
    description: 'No chargeback run completed in the last hour (the timer runs every window).'
    severity: 2
    frequency: 'PT15M'
    window: 'PT1H'
    query: 'requests | where name has "chargebackRun" and success == true'
    operator: 'LessThan'
    threshold: 1
  }
  {
    name: 'usage-spooled'
    description: 'Redis was unavailable: usage events are being spooled to Blob Storage.'
    severity: 2
    frequency: 'PT5M'
    window: 'PT15M'
    query: 'traces | where message has "spooling usage events"'
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    name: 'usage-quarantined'
    description: 'Usage events failed the usage schema and were quarantined (usage-quarantine container).'
    severity: 2
    frequency: 'PT15M'
    window: 'PT1H'
    query: 'traces | where message has "CHARGEBACK_INVALID_EVENTS"'
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    name: 'budget-soft-threshold'
    description: 'Requests crossed a soft threshold of a monthly budget (x-budget-warning).'
    severity: 3
    frequency: 'PT15M'
    window: 'PT1H'
    query: 'customMetrics | where name == "chargeback.budget_warnings"'
    operator: 'GreaterThan'
    threshold: 0
  }
]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(emails)) {
  name: '${namePrefix}-alerts'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'chargeback'
    enabled: true
    emailReceivers: [
      for (email, i) in emails: {
        name: 'email-${i}'
        emailAddress: email
        useCommonAlertSchema: true
      }
    ]
  }
}

resource rules 'Microsoft.Insights/scheduledQueryRules@2026-03-01' = [
  for alert in alerts: {
    name: '${namePrefix}-${alert.name}'
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: '${namePrefix}-${alert.name}'
      description: alert.description
      severity: alert.severity
      enabled: true
      scopes: [
        appInsightsId
      ]
      evaluationFrequency: alert.frequency
      windowSize: alert.window
      criteria: {
        allOf: [
          {
            query: alert.query
            timeAggregation: 'Count'
            operator: alert.operator
            threshold: alert.threshold
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
      autoMitigate: true
      actions: {
        actionGroups: empty(emails) ? [] : [actionGroup.id]
      }
    }
  }
]
