// Log Analytics workspace and workspace-based Application Insights.

@description('Name prefix.')
param name string

@description('Region.')
param location string

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${name}-logs'
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${name}-ai'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
  }
}

@description('Application Insights resource name.')
output insightsName string = insights.name

@description('Connection string (not a secret: an ingestion endpoint and key for telemetry only).')
output connectionString string = insights.properties.ConnectionString
