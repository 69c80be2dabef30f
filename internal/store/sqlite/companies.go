package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// CreateCompany stores a new company; ErrAlreadyExists if the id is taken.
// Settings with sending domains are refused (PutSettings claims them).
func (s *Store) CreateCompany(ctx context.Context, c comms.Company) error {
	if len(c.Settings.SendingDomains) > 0 {
		return wrap("CreateCompany", errSendingDomainsAtCreate)
	}
	settings, err := json.Marshal(c.Settings)
	if err != nil {
		return wrap("CreateCompany", err)
	}
	_, err = s.w.ExecContext(ctx,
		`INSERT INTO companies (id, credits, settings, created_at) VALUES (?, ?, ?, ?)`,
		c.ID, c.Credits, string(settings), ts(c.CreatedAt))
	return wrap("CreateCompany", err)
}

// GetCompany returns the company with its settings as stored; ErrNotFound if absent.
func (s *Store) GetCompany(ctx context.Context, id string) (comms.Company, error) {
	c := comms.Company{ID: id}
	var settings string
	var created int64
	st, err := s.reader(ctx, `SELECT credits, settings, created_at FROM companies WHERE id = ?`)
	if err != nil {
		return comms.Company{}, wrap("GetCompany", err)
	}
	err = st.QueryRowContext(ctx, id).Scan(&c.Credits, &settings, &created)
	if err != nil {
		return comms.Company{}, wrap("GetCompany", err)
	}
	if err := json.Unmarshal([]byte(settings), &c.Settings); err != nil {
		return comms.Company{}, wrap("GetCompany", err)
	}
	c.CreatedAt = fromTS(created)
	return c, nil
}

// errSendingDomainsAtCreate refuses a company created with sending domains.
var errSendingDomainsAtCreate = errors.New("a company is created without sending domains; declare them with PutSettings, which claims them")

// PutSettings replaces the company's settings document and makes its
// sending-domain claims exactly st.SendingDomains, in one transaction
// (claimSendingDomains); ErrNotFound if there is no such company, a
// *comms.SendingDomainTakenError if another company holds one of the
// domains (nothing written).
func (s *Store) PutSettings(ctx context.Context, companyID string, st comms.Settings) error {
	settings, err := json.Marshal(st)
	if err != nil {
		return wrap("PutSettings", err)
	}
	err = inTx(ctx, s.w, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE companies SET settings = ? WHERE id = ?`, string(settings), companyID)
		if err := mustAffect(res, err); err != nil {
			return err
		}
		return claimSendingDomains(ctx, tx, companyID, st.SendingDomains)
	})
	return wrap("PutSettings", err)
}

// CreateAPIKey stores a key; ErrAlreadyExists if its id or hash is taken,
// ErrNotFound if its company does not exist.
func (s *Store) CreateAPIKey(ctx context.Context, k comms.APIKey) error {
	scopes, err := json.Marshal(k.Scopes)
	if err != nil {
		return wrap("CreateAPIKey", err)
	}
	_, err = s.w.ExecContext(ctx,
		`INSERT INTO api_keys (id, company_id, hash, prefix, scopes, created_at, revoked_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.CompanyID, k.Hash, k.Prefix, string(scopes), ts(k.CreatedAt), tsPtr(k.RevokedAt))
	return wrap("CreateAPIKey", err)
}

const keyColumns = `id, company_id, hash, prefix, scopes, created_at, revoked_at`

func scanKey(row scanner) (comms.APIKey, error) {
	var k comms.APIKey
	var scopes string
	var created int64
	var revoked sql.NullInt64
	if err := row.Scan(&k.ID, &k.CompanyID, &k.Hash, &k.Prefix, &scopes, &created, &revoked); err != nil {
		return comms.APIKey{}, err
	}
	if err := json.Unmarshal([]byte(scopes), &k.Scopes); err != nil {
		return comms.APIKey{}, err
	}
	k.CreatedAt, k.RevokedAt = fromTS(created), fromTSPtr(revoked)
	return k, nil
}

// APIKeyByHash returns the key (revoked or not) whose secret hashes to hash.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (comms.APIKey, error) {
	k, err := scanKey(s.r.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE hash = ?`, hash))
	if err != nil {
		return comms.APIKey{}, wrap("APIKeyByHash", err)
	}
	return k, nil
}

// ListAPIKeys returns the company's keys, oldest first (ties by id).
func (s *Store) ListAPIKeys(ctx context.Context, companyID string) ([]comms.APIKey, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT `+keyColumns+` FROM api_keys WHERE company_id = ? ORDER BY created_at, id`, companyID)
	if err != nil {
		return nil, wrap("ListAPIKeys", err)
	}
	keys, err := collect(rows, scanKey)
	return keys, wrap("ListAPIKeys", err)
}

// RevokeAPIKey marks the key revoked at the given time. Revoking a revoked key
// succeeds and keeps the first revocation time.
func (s *Store) RevokeAPIKey(ctx context.Context, companyID, keyID string, at time.Time) error {
	res, err := s.w.ExecContext(ctx,
		`UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE company_id = ? AND id = ?`,
		ts(at), companyID, keyID)
	return wrap("RevokeAPIKey", mustAffect(res, err))
}

// PutPhoneNumber creates or replaces a phone number, keeping the first
// CreatedAt. The unique index on e164 makes the number the resource's
// alone: a number another resource (of any company) holds is
// ErrPhoneNumberTaken and writes nothing, and changing or deleting the
// resource frees its old number in the same statement.
func (s *Store) PutPhoneNumber(ctx context.Context, p comms.PhoneNumber) error {
	caps, err := json.Marshal(p.Capabilities)
	if err != nil {
		return wrap("PutPhoneNumber", err)
	}
	_, err = s.w.ExecContext(ctx,
		`INSERT INTO phone_numbers (company_id, id, e164, capabilities, label, created_at, updated_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (company_id, id) DO UPDATE SET
		   e164 = excluded.e164, capabilities = excluded.capabilities,
		   label = excluded.label, updated_at = excluded.updated_at`,
		p.CompanyID, p.ID, p.E164, string(caps), p.Label, ts(p.CreatedAt), ts(p.UpdatedAt))
	if phoneTaken(err) {
		err = fmt.Errorf("%w: %s is held by another phone-number resource", comms.ErrPhoneNumberTaken, p.E164)
	}
	return wrap("PutPhoneNumber", err)
}

const phoneColumns = `company_id, id, e164, capabilities, label, created_at, updated_at`

func scanPhone(row scanner) (comms.PhoneNumber, error) {
	var p comms.PhoneNumber
	var caps string
	var created, updated int64
	if err := row.Scan(&p.CompanyID, &p.ID, &p.E164, &caps, &p.Label, &created, &updated); err != nil {
		return comms.PhoneNumber{}, err
	}
	if err := json.Unmarshal([]byte(caps), &p.Capabilities); err != nil {
		return comms.PhoneNumber{}, err
	}
	p.CreatedAt, p.UpdatedAt = fromTS(created), fromTS(updated)
	return p, nil
}

// GetPhoneNumber returns a phone number of the company; ErrNotFound if absent.
func (s *Store) GetPhoneNumber(ctx context.Context, companyID, id string) (comms.PhoneNumber, error) {
	p, err := scanPhone(s.r.QueryRowContext(ctx,
		`SELECT `+phoneColumns+` FROM phone_numbers WHERE company_id = ? AND id = ?`, companyID, id))
	if err != nil {
		return comms.PhoneNumber{}, wrap("GetPhoneNumber", err)
	}
	return p, nil
}

// ListPhoneNumbers returns the company's numbers ordered by id.
func (s *Store) ListPhoneNumbers(ctx context.Context, companyID string) ([]comms.PhoneNumber, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT `+phoneColumns+` FROM phone_numbers WHERE company_id = ? ORDER BY id`, companyID)
	if err != nil {
		return nil, wrap("ListPhoneNumbers", err)
	}
	ps, err := collect(rows, scanPhone)
	return ps, wrap("ListPhoneNumbers", err)
}

// DeletePhoneNumber deletes a phone number; ErrNotFound if absent.
func (s *Store) DeletePhoneNumber(ctx context.Context, companyID, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM phone_numbers WHERE company_id = ? AND id = ?`, companyID, id)
	return wrap("DeletePhoneNumber", mustAffect(res, err))
}

// PutVoiceAgent creates or replaces a voice agent, keeping the first CreatedAt.
func (s *Store) PutVoiceAgent(ctx context.Context, a comms.VoiceAgent) error {
	_, err := s.w.ExecContext(ctx,
		`INSERT INTO voice_agents (company_id, id, provider, agent_id, phone_number_id, label, created_at, updated_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (company_id, id) DO UPDATE SET
		   provider = excluded.provider, agent_id = excluded.agent_id,
		   phone_number_id = excluded.phone_number_id, label = excluded.label,
		   updated_at = excluded.updated_at`,
		a.CompanyID, a.ID, a.Provider, a.AgentID, a.PhoneNumberID, a.Label, ts(a.CreatedAt), ts(a.UpdatedAt))
	return wrap("PutVoiceAgent", err)
}

const agentColumns = `company_id, id, provider, agent_id, phone_number_id, label, created_at, updated_at`

func scanAgent(row scanner) (comms.VoiceAgent, error) {
	var a comms.VoiceAgent
	var created, updated int64
	if err := row.Scan(&a.CompanyID, &a.ID, &a.Provider, &a.AgentID, &a.PhoneNumberID, &a.Label, &created, &updated); err != nil {
		return comms.VoiceAgent{}, err
	}
	a.CreatedAt, a.UpdatedAt = fromTS(created), fromTS(updated)
	return a, nil
}

// GetVoiceAgent returns a voice agent of the company; ErrNotFound if absent.
func (s *Store) GetVoiceAgent(ctx context.Context, companyID, id string) (comms.VoiceAgent, error) {
	a, err := scanAgent(s.r.QueryRowContext(ctx,
		`SELECT `+agentColumns+` FROM voice_agents WHERE company_id = ? AND id = ?`, companyID, id))
	if err != nil {
		return comms.VoiceAgent{}, wrap("GetVoiceAgent", err)
	}
	return a, nil
}

// ListVoiceAgents returns the company's agents ordered by id.
func (s *Store) ListVoiceAgents(ctx context.Context, companyID string) ([]comms.VoiceAgent, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT `+agentColumns+` FROM voice_agents WHERE company_id = ? ORDER BY id`, companyID)
	if err != nil {
		return nil, wrap("ListVoiceAgents", err)
	}
	as, err := collect(rows, scanAgent)
	return as, wrap("ListVoiceAgents", err)
}

// DeleteVoiceAgent deletes a voice agent; ErrNotFound if absent.
func (s *Store) DeleteVoiceAgent(ctx context.Context, companyID, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM voice_agents WHERE company_id = ? AND id = ?`, companyID, id)
	return wrap("DeleteVoiceAgent", mustAffect(res, err))
}

// mustAffect turns a write that matched no row into ErrNotFound.
func mustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return comms.ErrNotFound
	}
	return nil
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rows: %w", err)
	}
	return out, nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }
