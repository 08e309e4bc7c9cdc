// Alerts that make failures visible instead of silent: a message that lands in a poison queue,
// operations that end failed, sign-ins that need a person, work parked too long and missing grants. shared/oplog.py logs one JSON line per operation, and that JSON is the
// whole trace message in AppTraces: {"event":"operation","operationId":…,"operation":…,
// "connection":…,"outcome":…,"durationMs":…}. tests/infra checks this query against a real line.
//
// Both rules skip query validation: on a first provision AppTraces exists only once telemetry
// arrives, and StorageQueueLogs once the queue diagnostic setting has delivered a log (main.bicep
// also makes this module wait for the storage module). The columns the queries use are checked in
// tests/infra against the documented table schemas (learn.microsoft.com/azure/azure-monitor/
// reference/tables/apptraces and .../storagequeuelogs).

@description('Prefix for the alert rule names.')
param namePrefix string

@description('Name of the action group (created only when alertEmail is set).')
param actionGroupName string

@description('Azure region of the alert rules.')
param location string

@description('Tags for the resources.')
param tags object

@description('Log Analytics workspace with the app traces (AppTraces) and queue logs (StorageQueueLogs).')
param logAnalyticsWorkspaceId string

@description('E-mail address that receives the alerts; empty creates no action group.')
param alertEmail string = ''

@description('Failed operations per 15 minutes above which the failed-operations alert fires.')
param failedOperationsThreshold int = 0

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'mailproc'
    enabled: true
    emailReceivers: [
      {
        name: 'admin'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var actionGroups = empty(alertEmail) ? [] : [
  actionGroup.id
]

// A successful PutMessage on a *-poison queue means the Functions host gave up on a message after
// maxDequeueCount attempts: its queue length just went above zero.
resource poisonQueueAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-poison-queue'
  location: location
  tags: tags
  properties: {
    displayName: 'Mail processor: message moved to a poison queue'
    description: 'A queued mail operation failed maxDequeueCount times and now sits in <queue>-poison. Look up its operationId in the operations table and in AppTraces, fix the cause, then re-queue it.'
    severity: 1
    enabled: true
    scopes: [
      logAnalyticsWorkspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    autoMitigate: false
    skipQueryValidation: true
    criteria: {
      allOf: [
        {
          query: 'StorageQueueLogs | where OperationName == "PutMessage" and StatusText == "Success" | extend queue = tostring(split(ObjectKey, "/")[2]) | where queue endswith "-poison" | project TimeGenerated, queue'
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'queue'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource failedOperationsAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-failed-operations'
  location: location
  tags: tags
  properties: {
    displayName: 'Mail processor: failed operations'
    description: 'Mail operations ended failed, poisoned or with an internal error (queued work: any final failed or poisoned status, since nobody was waiting for it). AppTraces holds one JSON line per operation (operationId, connection, operation, outcome, durationMs, graphRequestIds): look the operationId up with GET /api/operations/{operationId}.'
    severity: 2
    enabled: true
    scopes: [
      logAnalyticsWorkspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    skipQueryValidation: true
    criteria: {
      allOf: [
        {
          // Parsed as JSON from its first "{" (so a logger prefix would not break it), not searched
          // as text: a substring test on "failed" would also match codes such as auth_failed or
          // validation_failed, a caller's mistake rather than ours.
          // "failed" / "poisoned" end queued work for good; "internal_error" is a bug in any mode.
          query: '''
AppTraces
| where Message contains '"event":"operation"'
| extend line = parse_json(substring(Message, indexof(Message, "{")))
| extend outcome = tostring(line.outcome), status = tostring(line.status), operation = tostring(line.operation), connection = tostring(line.connection), operationId = tostring(line.operationId)
| where outcome in ("failed", "poisoned", "internal_error") or status in ("failed", "poisoned")
| project TimeGenerated, operation, connection, outcome, status, operationId
'''
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'operation'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: failedOperationsThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroups
    }
  }
}

// The signin_health timer (shared/health) writes one JSON line per sign-in state change and per
// failing permission-audit check, the hourly parked_work timer one per operation parked longer
// than PARKED_ALERT_MINUTES; each
// rule counts its lines, so it fires once per change instead of on every run. tests/infra runs
// these queries on the lines the app really writes.

resource signInAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-sign-in'
  location: location
  tags: tags
  properties: {
    displayName: 'Mail processor: a sign-in needs a person'
    description: 'A delegated sign-in needs a new sign-in (its refresh was refused: expired after 90 idle days, revoked, password expired, MFA required) or expires within SIGNIN_WARN_DAYS (14) days. The line names the connection, the (masked) user and the adminCommand; users get their sign-in link through the connection\'s notifyUrl. python -m admin connections list shows every sign-in\'s state.'
    severity: 2
    enabled: true
    scopes: [
      logAnalyticsWorkspaceId
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    autoMitigate: true
    skipQueryValidation: true
    criteria: {
      allOf: [
        {
          query: '''
AppTraces
| where Message contains '"event":"signin.state"'
| extend line = parse_json(substring(Message, indexof(Message, "{")))
| extend state = tostring(line.state), connection = tostring(line.connection), user = tostring(line.user), daysLeft = todouble(line.daysLeft)
| where state in ("needs_sign_in", "expiring")
| project TimeGenerated, connection, user, state, daysLeft
'''
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'connection'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource parkedWorkAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-parked-work'
  location: location
  tags: tags
  properties: {
    displayName: 'Mail processor: work parked for over an hour'
    description: 'An operation has waited for a sign-in longer than PARKED_ALERT_MINUTES (60). It resumes by itself once the user (signInUrl) or an admin (adminCommand) signs in; after PARKED_TTL_HOURS it fails with reauth_expired.'
    severity: 2
    enabled: true
    scopes: [
      logAnalyticsWorkspaceId
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    autoMitigate: true
    skipQueryValidation: true
    criteria: {
      allOf: [
        {
          query: '''
AppTraces
| where Message contains '"event":"operation.parked_overdue"'
| extend line = parse_json(substring(Message, indexof(Message, "{")))
| extend connection = tostring(line.connection), operationId = tostring(line.operationId), parkedMinutes = toint(line.parkedMinutes)
| project TimeGenerated, connection, operationId, parkedMinutes
'''
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'connection'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource permissionAuditAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-permission-audit'
  location: location
  tags: tags
  properties: {
    displayName: 'Mail processor: a sender mailbox lacks a grant'
    description: 'The weekly permission audit found a check that fails (Full Access, a draft, the app\'s RBAC for Applications scope, or no token). The line carries the PowerShell that grants it; python -m admin connections audit NAME shows the whole report.'
    severity: 3
    enabled: true
    scopes: [
      logAnalyticsWorkspaceId
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    autoMitigate: true
    skipQueryValidation: true
    criteria: {
      allOf: [
        {
          query: '''
AppTraces
| where Message contains '"event":"permission.audit"'
| extend line = parse_json(substring(Message, indexof(Message, "{")))
| extend connection = tostring(line.connection), mailbox = tostring(line.mailbox), check = tostring(line.check), grant = tostring(line.grant)
| project TimeGenerated, connection, mailbox, check, grant
'''
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'connection'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroups
    }
  }
}
