#!/bin/sh
# azd preprovision hook: cheap checks before `azd provision`, so a deployment does not fail late or
# quietly. azd runs it with the environment's values (.azure/<env>/.env) in the environment.
# Exit status 1 (and azd stops) only for a certain problem; what it cannot check is a warning.
set -u

problems=0
warn() { printf 'WARNING: %s\n' "$*" >&2; }
fail() {
    printf 'ERROR: %s\n' "$*" >&2
    problems=$((problems + 1))
}

# Alerts without a receiver are created but notify nobody.
if [ -z "${ALERT_EMAIL:-}" ]; then
    warn "ALERT_EMAIL is not set: the poison-queue and failed-operations alerts will be created" \
        "but will notify nobody. Set a receiver with: azd env set ALERT_EMAIL ops@example.com"
fi

# Key Vault names: 3-24 characters, letters, digits and hyphens, starting with a letter and ending
# with a letter or digit, no double hyphen (Azure's naming rules for Microsoft.KeyVault/vaults).
name="${KEY_VAULT_NAME:-}"
if [ -n "$name" ]; then
    if ! printf '%s' "$name" | grep -Eq '^[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$' ||
        printf '%s' "$name" | grep -q -- '--'; then
        fail "KEY_VAULT_NAME '$name' is not a valid Key Vault name: 3-24 letters, digits and" \
            "hyphens, starting with a letter, ending with a letter or digit, no '--'."
    fi
fi

# Flex Consumption's VNet integration delegates the app subnet to Microsoft.App/environments; ARM
# does not register that resource provider for you, and the deployment fails without it.
private=$(printf '%s' "${PRIVATE_NETWORKING:-false}" | tr '[:upper:]' '[:lower:]')
if [ "$private" = "true" ]; then
    register="az provider register --namespace Microsoft.App --wait"
    if command -v az >/dev/null 2>&1; then
        if [ -n "${AZURE_SUBSCRIPTION_ID:-}" ]; then
            state=$(az provider show --namespace Microsoft.App --subscription "$AZURE_SUBSCRIPTION_ID" \
                --query registrationState -o tsv 2>/dev/null) || state=""
        else
            state=$(az provider show --namespace Microsoft.App \
                --query registrationState -o tsv 2>/dev/null) || state=""
        fi
        case "$state" in
            Registered) ;;
            "")
                warn "could not read the Microsoft.App resource provider's state (is az signed in" \
                    "to this subscription?). PRIVATE_NETWORKING needs it registered: $register"
                ;;
            *)
                fail "PRIVATE_NETWORKING needs the Microsoft.App resource provider, which is" \
                    "'$state' in this subscription. Register it once: $register"
                ;;
        esac
    else
        warn "az (Azure CLI) not found: cannot check that the Microsoft.App resource provider is" \
            "registered, which PRIVATE_NETWORKING needs: $register"
    fi
fi

# The NAT gateway sits on the VNet-integration subnet, which only private networking creates.
nat=$(printf '%s' "${NAT_GATEWAY:-false}" | tr '[:upper:]' '[:lower:]')
if [ "$nat" = "true" ] && [ "$private" != "true" ]; then
    fail "NAT_GATEWAY=true needs the VNet integration of PRIVATE_NETWORKING=true (the NAT gateway" \
        "is attached to its app subnet). Set both: azd env set PRIVATE_NETWORKING true"
fi

[ "$problems" -eq 0 ] || exit 1
exit 0
