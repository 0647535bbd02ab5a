terraform {
  required_version = ">= 1.0"

  required_providers {
    coder = {
      source  = "coder/coder"
      version = ">= 0.12"
    }
  }
}

# Workspace backups with crestic: restore on start, back up at an interval
# and on stop.  Same inputs as Coder's restic module (without the restic
# download: crestic comes from crestic_source, a local file), plus
# crestic_source and stop_deadline_seconds.

data "coder_workspace" "me" {}

data "coder_workspace_owner" "me" {}

variable "agent_id" {
  type        = string
  description = "The ID of a Coder agent."
}

variable "crestic_source" {
  type        = string
  description = "Local path, inside the workspace image, of the crestic binary, a directory holding it, or a .deb/.tar.gz package. Empty: crestic must be on PATH. Nothing is downloaded."
  default     = ""
}

variable "repository" {
  type        = string
  description = "Repository location ('/local/path', 'rest:https://host/path', ...)."
}

variable "password" {
  type        = string
  description = "Repository password."
  sensitive   = true
}

variable "env" {
  type        = map(string)
  description = "Backend environment variables (credentials)."
  default     = {}
  sensitive   = true
}

variable "backup_paths" {
  type        = list(string)
  description = "Paths to back up, absolute or relative to 'directory'."
  default     = ["/home/coder"]
}

variable "exclude_patterns" {
  type        = list(string)
  description = "Exclude patterns (restic syntax)."
  default     = []
}

variable "backup_tags" {
  type        = list(string)
  description = "Additional tags for every snapshot."
  default     = []
}

variable "directory" {
  type        = string
  description = "Working directory of the backups."
  default     = "~"
}

variable "backup_on_stop" {
  type        = bool
  description = "Back up when the workspace stops."
  default     = true
}

variable "stop_deadline_seconds" {
  type        = number
  description = "Seconds the stop backup may take; when they run short it saves a partial snapshot of what it has (0: no limit)."
  default     = 0
}

variable "backup_interval_minutes" {
  type        = number
  description = "Back up every N minutes while the workspace runs (0: off)."
  default     = 0
}

variable "restore_on_start" {
  type        = bool
  description = "Restore the latest backup of this workspace when it starts."
  default     = true
}

variable "snapshot_id" {
  type        = string
  description = "Restore this snapshot instead (clone another workspace)."
  default     = ""
}

variable "restore_target" {
  type        = string
  description = "Target directory of the restore ('/' puts files back at their paths)."
  default     = "/"
}

variable "start_blocks_login" {
  type        = bool
  description = "Block login until the restore is done."
  default     = true
}

variable "custom_stop_script" {
  type        = string
  description = "Script run before the stop backup."
  default     = ""
}

variable "retention_keep_last" {
  type    = number
  default = 10
}

variable "retention_keep_daily" {
  type    = number
  default = 14
}

variable "retention_keep_weekly" {
  type    = number
  default = 8
}

variable "retention_keep_monthly" {
  type    = number
  default = 6
}

variable "auto_forget" {
  type        = bool
  description = "Apply the retention policy (per workspace) after each backup."
  default     = false
}

variable "auto_prune" {
  type        = bool
  description = "Prune after forgetting."
  default     = false
}

variable "auto_init_repo" {
  type        = bool
  description = "Initialise the repository when it does not exist (never on other errors)."
  default     = true
}

variable "icon" {
  type    = string
  default = "/icon/restic.svg"
}

variable "order" {
  type    = number
  default = null
}

variable "group" {
  type    = string
  default = null
}

locals {
  start_settings = {
    CRESTIC_SOURCE    = var.crestic_source
    AUTO_INIT         = tostring(var.auto_init_repo)
    RESTORE_ON_START  = tostring(var.restore_on_start)
    SNAPSHOT_ID       = var.snapshot_id
    RESTORE_TARGET    = var.restore_target
    BACKUP_INTERVAL   = tostring(var.backup_interval_minutes)
    BACKUP_PATHS      = jsonencode(var.backup_paths)
    EXCLUDE_PATTERNS  = jsonencode(var.exclude_patterns)
    BACKUP_TAGS       = jsonencode(var.backup_tags)
    DIRECTORY         = var.directory
    RETENTION_LAST    = tostring(var.retention_keep_last)
    RETENTION_DAILY   = tostring(var.retention_keep_daily)
    RETENTION_WEEKLY  = tostring(var.retention_keep_weekly)
    RETENTION_MONTHLY = tostring(var.retention_keep_monthly)
    AUTO_FORGET       = tostring(var.auto_forget)
    AUTO_PRUNE        = tostring(var.auto_prune)
  }
  stop_settings = {
    CUSTOM_STOP_SCRIPT = var.custom_stop_script
    STOP_DEADLINE      = tostring(var.stop_deadline_seconds)
  }
  # export KEY='value' lines, single quotes escaped for the shell
  start_env = join("\n", [for k, v in local.start_settings : "export ${k}='${replace(v, "'", "'\\''")}'"])
  stop_env  = join("\n", [for k, v in local.stop_settings : "export ${k}='${replace(v, "'", "'\\''")}'"])
}

resource "coder_env" "restic_repository" {
  agent_id = var.agent_id
  name     = "RESTIC_REPOSITORY"
  value    = var.repository
}

resource "coder_env" "restic_password" {
  agent_id = var.agent_id
  name     = "RESTIC_PASSWORD"
  value    = var.password
}

resource "coder_env" "backend_env" {
  for_each = nonsensitive(toset(keys(var.env)))
  agent_id = var.agent_id
  name     = each.key
  value    = var.env[each.key]
}

resource "coder_env" "workspace_owner" {
  agent_id = var.agent_id
  name     = "RESTIC_WORKSPACE_OWNER"
  value    = data.coder_workspace_owner.me.name
}

resource "coder_env" "workspace_name" {
  agent_id = var.agent_id
  name     = "RESTIC_WORKSPACE_NAME"
  value    = data.coder_workspace.me.name
}

resource "coder_env" "workspace_id" {
  agent_id = var.agent_id
  name     = "RESTIC_WORKSPACE_ID"
  value    = data.coder_workspace.me.id
}

resource "coder_script" "install_and_restore" {
  agent_id           = var.agent_id
  display_name       = "Restic Setup"
  icon               = var.icon
  run_on_start       = true
  start_blocks_login = var.restore_on_start && var.start_blocks_login
  script             = "#!/usr/bin/env bash\n${local.start_env}\n${file("${path.module}/scripts/start.sh")}"
}

resource "coder_script" "stop_backup" {
  count              = var.backup_on_stop ? 1 : 0
  agent_id           = var.agent_id
  display_name       = "Restic Backup"
  icon               = var.icon
  run_on_stop        = true
  start_blocks_login = false
  script             = "#!/usr/bin/env bash\n${local.stop_env}\n${file("${path.module}/scripts/stop.sh")}"
}

resource "coder_app" "restic_backup" {
  agent_id     = var.agent_id
  slug         = "restic-backup"
  display_name = "Backup Now"
  icon         = var.icon
  order        = var.order
  group        = var.group
  command      = "$CODER_SCRIPT_BIN_DIR/restic-backup --tag manual-backup"
}
