-- Every money-bearing resource carries its currency (ISO 4217). A project is priced in
-- one currency: its lots' prices, deposits and price history and its min/max prices.
-- Existing projects, and projects created without one, are in Australian dollars. The
-- service checks the code against ISO 4217; the table checks its shape.
ALTER TABLE property.projects
    ADD COLUMN currency varchar(3) NOT NULL DEFAULT 'AUD' CHECK (currency ~ '^[A-Z]{3}$');
