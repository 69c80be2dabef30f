package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

var _ webhooks.EndpointStore = (*Store)(nil)

// migrationWebhookEndpoints adds the companies' webhook endpoints (appended
// last; self-contained, so that it can be renumbered when migrations are
// merged). event_types and secrets are JSON: event_types a list of type
// names ([] for every type), secrets a list of {value, created_at,
// expires_at} with times in unix nanoseconds (expires_at null for the
// current secret). The key (company_id, id) is the listing order.
const migrationWebhookEndpoints = `
CREATE TABLE webhook_endpoints (
	company_id      TEXT    NOT NULL REFERENCES companies (id),
	id              TEXT    NOT NULL,
	url             TEXT    NOT NULL,
	event_types     TEXT    NOT NULL,
	description     TEXT    NOT NULL,
	disabled        INTEGER NOT NULL,
	disabled_reason TEXT    NOT NULL,
	secrets         TEXT    NOT NULL,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	version         INTEGER NOT NULL,
	PRIMARY KEY (company_id, id)
) STRICT, WITHOUT ROWID;
`

// secretRow is a signing secret as the secrets column holds it.
type secretRow struct {
	Value     string `json:"value"`
	CreatedAt int64  `json:"created_at"`
	ExpiresAt *int64 `json:"expires_at"`
}

// migrationEndpointHealth adds when an endpoint was disabled and since when
// it has been failing (0: never / not failing), for the engine's rule that
// an endpoint failing for webhooks.FailingFor is disabled.
const migrationEndpointHealth = `
ALTER TABLE webhook_endpoints ADD COLUMN disabled_at   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhook_endpoints ADD COLUMN failing_since INTEGER NOT NULL DEFAULT 0;
`

const endpointColumns = `company_id, id, url, event_types, description, disabled, disabled_reason, secrets, created_at, updated_at, version, disabled_at, failing_since`

func endpointArgs(e webhooks.Endpoint) ([]any, error) {
	types := e.EventTypes
	if types == nil {
		types = []comms.EventType{}
	}
	tj, err := json.Marshal(types)
	if err != nil {
		return nil, err
	}
	secrets := make([]secretRow, len(e.Secrets))
	for i, s := range e.Secrets {
		secrets[i] = secretRow{Value: s.Value, CreatedAt: ts(s.CreatedAt)}
		if s.ExpiresAt != nil {
			n := ts(*s.ExpiresAt)
			secrets[i].ExpiresAt = &n
		}
	}
	sj, err := json.Marshal(secrets)
	if err != nil {
		return nil, err
	}
	return []any{e.CompanyID, e.ID, e.URL, string(tj), e.Description, e.Disabled, string(e.DisabledReason), string(sj),
		ts(e.CreatedAt), ts(e.UpdatedAt), e.Version + 1, ts(e.DisabledAt), ts(e.FailingSince)}, nil
}

func scanEndpoint(row scanner) (webhooks.Endpoint, error) {
	var (
		e                 webhooks.Endpoint
		types, secrets    string
		created, updated  int64
		disabled, failing int64
	)
	if err := row.Scan(&e.CompanyID, &e.ID, &e.URL, &types, &e.Description, &e.Disabled, &e.DisabledReason, &secrets,
		&created, &updated, &e.Version, &disabled, &failing); err != nil {
		return webhooks.Endpoint{}, err
	}
	e.CreatedAt, e.UpdatedAt, e.DisabledAt, e.FailingSince = fromTS(created), fromTS(updated), fromTS(disabled), fromTS(failing)
	if err := json.Unmarshal([]byte(types), &e.EventTypes); err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("webhook endpoint event_types: %w", err)
	}
	if len(e.EventTypes) == 0 {
		e.EventTypes = nil
	}
	var rows []secretRow
	if err := json.Unmarshal([]byte(secrets), &rows); err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("webhook endpoint secrets: %w", err)
	}
	for _, r := range rows {
		s := webhooks.Secret{Value: r.Value, CreatedAt: fromTS(r.CreatedAt)}
		if r.ExpiresAt != nil {
			t := fromTS(*r.ExpiresAt)
			s.ExpiresAt = &t
		}
		e.Secrets = append(e.Secrets, s)
	}
	return e, nil
}

// PutWebhookEndpoint inserts (e.Version 0) or replaces, on condition of the
// stored version, an endpoint.
func (s *Store) PutWebhookEndpoint(ctx context.Context, e webhooks.Endpoint) error {
	const op = "PutWebhookEndpoint"
	args, err := endpointArgs(e)
	if err != nil {
		return wrap(op, err)
	}
	if e.Version == 0 {
		_, err := s.w.ExecContext(ctx, `INSERT INTO webhook_endpoints (`+endpointColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
		return wrap(op, err)
	}
	return wrap(op, inTx(ctx, s.w, func(tx *sql.Tx) error {
		var v int64
		err := tx.QueryRowContext(ctx, `SELECT version FROM webhook_endpoints WHERE company_id = ? AND id = ?`,
			e.CompanyID, e.ID).Scan(&v)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return comms.ErrNotFound
		case err != nil:
			return err
		case v != e.Version:
			return comms.ErrConflict
		}
		_, err = tx.ExecContext(ctx, `UPDATE webhook_endpoints SET url = ?3, event_types = ?4, description = ?5,
			disabled = ?6, disabled_reason = ?7, secrets = ?8, created_at = ?9, updated_at = ?10, version = ?11,
			disabled_at = ?12, failing_since = ?13
			WHERE company_id = ?1 AND id = ?2`, args...)
		return err
	}))
}

// GetWebhookEndpoint returns an endpoint of the company.
func (s *Store) GetWebhookEndpoint(ctx context.Context, companyID, id string) (webhooks.Endpoint, error) {
	e, err := scanEndpoint(s.r.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints
		WHERE company_id = ? AND id = ?`, companyID, id))
	if err != nil {
		return webhooks.Endpoint{}, wrap("GetWebhookEndpoint", err)
	}
	return e, nil
}

// ListWebhookEndpoints returns the company's endpoints after the id after,
// in id order (the table's key order).
func (s *Store) ListWebhookEndpoints(ctx context.Context, companyID, after string, limit int) ([]webhooks.Endpoint, bool, error) {
	const op = "ListWebhookEndpoints"
	if limit < 1 || limit > maxLimit {
		limit = maxLimit
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints
		WHERE company_id = ? AND id > ? ORDER BY id LIMIT ?`, companyID, after, limit+1)
	if err != nil {
		return nil, false, wrap(op, err)
	}
	es, err := collect(rows, scanEndpoint)
	if err != nil {
		return nil, false, wrap(op, err)
	}
	if es == nil {
		es = []webhooks.Endpoint{}
	}
	if len(es) > limit {
		return es[:limit], true, nil
	}
	return es, false, nil
}

// DeleteWebhookEndpoint deletes an endpoint of the company.
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, companyID, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM webhook_endpoints WHERE company_id = ? AND id = ?`, companyID, id)
	if err != nil {
		return wrap("DeleteWebhookEndpoint", err)
	}
	n, err := res.RowsAffected()
	if err == nil && n == 0 {
		err = comms.ErrNotFound
	}
	return wrap("DeleteWebhookEndpoint", err)
}

// WebhookCompanies returns the companies that have webhook endpoints, in id
// order: whose feeds the embedded mode's fan-out catches up on at start.
func (s *Store) WebhookCompanies(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT company_id FROM webhook_endpoints ORDER BY company_id`)
	if err != nil {
		return nil, wrap("WebhookCompanies", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, wrap("WebhookCompanies", err)
		}
		out = append(out, id)
	}
	return out, wrap("WebhookCompanies", rows.Err())
}
