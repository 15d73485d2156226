// A workbook on Application Insights: tokens per department from APIM's token metrics
// (llm-emit-token-metric, namespace ai-chargeback, dimension Department) and the app's own
// usage metrics (chargeback.tokens, chargeback.audio_seconds, chargeback.characters by
// department), with an estimated cost from a price per 1,000 tokens the reader sets; and the
// billed cost per department of each monthly chargeback report, as the app reports it when it
// writes a report (chargeback.report_department_total). The reports themselves stay the invoice.

import { tagMap } from '../types.bicep'

param location string
param tags tagMap
param displayName string = 'AI usage and cost per department'
param appInsightsId string

var tokensByDepartment = 'customMetrics | where name in ("Prompt Tokens", "Completion Tokens", "Total Tokens") | extend Department = tostring(customDimensions["Department"]) | summarize Tokens = sum(valueSum) by Department, Metric = name | evaluate pivot(Metric, sum(Tokens)) | extend EstimatedCost = todouble(column_ifexists("Total Tokens", 0.0)) / 1000.0 * {PricePer1kTokens} | order by EstimatedCost desc'
var tokensOverTime = 'customMetrics | where name == "Total Tokens" | extend Department = tostring(customDimensions["Department"]) | summarize Tokens = sum(valueSum) by Department, bin(timestamp, 1d) | render timechart'
var appUsage = 'customMetrics | where name in ("chargeback.tokens", "chargeback.audio_seconds", "chargeback.characters") | extend Department = tostring(customDimensions["department"]), Deployment = tostring(customDimensions["deployment"]) | summarize Value = sum(valueSum) by Department, Deployment, Metric = name | order by Department asc'

var billedByDepartment = 'customMetrics | where name == "chargeback.report_department_total" | extend Period = tostring(customDimensions["period"]), Kind = tostring(customDimensions["kind"]), Department = tostring(customDimensions["department"]), Currency = tostring(customDimensions["currency"]) | where Kind == "monthly" | summarize arg_max(timestamp, value) by Period, Department, Currency | project Period, Department, BilledCost = value, Currency, ReportWritten = timestamp | order by Period desc, BilledCost desc'

var workbookContent = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      content: {
        json: '## AI usage per department\nTokens as APIM metered them (per product = department), and the app\'s own usage figures. Costs here are estimates; the chargeback reports hold the invoiced amounts.'
      }
      name: 'intro'
    }
    {
      type: 9
      content: {
        version: 'KqlParameterItem/1.0'
        parameters: [
          {
            id: 'time-range'
            version: 'KqlParameterItem/1.0'
            name: 'TimeRange'
            type: 4
            value: { durationMs: 2592000000 }
            typeSettings: { allowCustom: true }
          }
          {
            id: 'price'
            version: 'KqlParameterItem/1.0'
            name: 'PricePer1kTokens'
            label: 'Price per 1,000 tokens'
            type: 1
            value: '0.002'
          }
        ]
      }
      name: 'parameters'
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        query: billedByDepartment
        size: 0
        title: 'Billed cost per department (monthly chargeback reports, latest version of each)'
        timeContextFromParameter: 'TimeRange'
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'table'
      }
      name: 'billed-by-department'
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        query: tokensByDepartment
        size: 0
        title: 'Tokens and estimated cost per department'
        timeContextFromParameter: 'TimeRange'
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'table'
      }
      name: 'tokens-by-department'
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        query: tokensOverTime
        size: 0
        title: 'Tokens per day'
        timeContextFromParameter: 'TimeRange'
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'timechart'
      }
      name: 'tokens-over-time'
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        query: appUsage
        size: 0
        title: 'Metered usage per department and deployment (app metrics)'
        timeContextFromParameter: 'TimeRange'
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'table'
      }
      name: 'app-usage'
    }
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, appInsightsId, 'chargeback-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: appInsightsId
    version: 'Notebook/1.0'
    serializedData: string(workbookContent)
  }
}

output id string = workbook.id
